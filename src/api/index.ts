/**
 * The local control API (HTTP on loopback, bearer token) and its TypeScript
 * client. The server side is started by the daemon; programs use `Client`.
 */
export { Client } from './client.ts'
export { Job } from './job-handle.ts'
export type { ClientOptions, StoreCallOptions } from './client.ts'
export { startApiServer, checkApiBind, isLoopbackHost, RESPONDED } from './server.ts'
export type { ApiServer, ApiServerInit, Route, RouteContext } from './server.ts'
export { apiRoutes } from './routes.ts'
export * from './errors.ts'
export * from './types.ts'
export { API_PREFIX, MAX_BODY_BYTES } from './constants.ts'
