// Node has WebAssembly; the project's `lib` (no DOM) does not declare it. blocks.ts uses its
// Memory only as page-aligned bytes for O_DIRECT writes.
declare namespace WebAssembly {
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number })
    readonly buffer: ArrayBuffer
  }
}
