/**
 * lepton-mesh for programs: the client of a local daemon, and the pieces to
 * embed a daemon or a bare node.
 */
export { Client } from './api/index.ts'
export type { ClientOptions, IdInfo, PeerInfo, StatusInfo, StoreCallOptions } from './api/index.ts'
export { Daemon } from './daemon.ts'
export type { DaemonInit } from './daemon.ts'
export { createNode } from './node/index.ts'
export type { LeptonNode, NodeInit } from './node/index.ts'
export type { AddResult, StatResult, PinInfo, GcResult } from './store/index.ts'
export { LeptonError } from './errors.ts'
