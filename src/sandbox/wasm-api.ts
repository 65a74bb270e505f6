/**
 * The few WebAssembly JS API members the sandbox uses. The project's type
 * libraries (es2024 + @types/node) do not declare the WebAssembly namespace,
 * and pulling in lib.dom for it would put browser globals in every file.
 */
export interface WasmModule {
  readonly __wasmModule?: never
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>
}

export interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>
  Module: {
    imports(module: WasmModule): Array<{ module: string, name: string, kind: string }>
    exports(module: WasmModule): Array<{ name: string, kind: string }>
  }
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance
}

export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
