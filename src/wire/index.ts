/** Wire helpers shared by every lepton protocol: framing and protobuf messages. */
export * from './errors.ts'
export { FrameDecoder, encodeVarint, readChunks, sendFrame, waitForDrain } from './frames.ts'
export { defineMessage } from './proto.ts'
export type { FieldSpec, MessageCodec, Schema } from './proto.ts'
