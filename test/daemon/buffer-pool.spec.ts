import { afterEach, describe, expect, it } from 'vitest'
import { DAEMON_BUFFER_POOL_BYTES, limitBufferPool } from '../../src/buffer-pool.ts'

describe('the daemon\'s Buffer pool', () => {
  const original = Buffer.poolSize
  afterEach(() => { Buffer.poolSize = original })

  it('a small buffer kept from a pool holds at most 8 KiB once the pool is limited', () => {
    Buffer.poolSize = 64 * 1024
    // a new pool starts once the current one is used up
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(1000)
    const before = Buffer.from('a peer id digest')
    expect(before.buffer.byteLength).toBe(64 * 1024)

    limitBufferPool()
    expect(Buffer.poolSize).toBe(DAEMON_BUFFER_POOL_BYTES)
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(1000)
    const after = Buffer.from('a peer id digest')
    expect(after.buffer.byteLength).toBeLessThanOrEqual(8 * 1024)
  })

  it('never grows a pool that is smaller already', () => {
    Buffer.poolSize = 4096
    limitBufferPool()
    expect(Buffer.poolSize).toBe(4096)
  })
})
