/**
 * Node's Buffer pool: Buffer.allocUnsafe and Buffer.from hand out small
 * buffers as slices of a shared pool, and a slice keeps its whole pool alive.
 * Node 24's pool is 64 KiB (Buffer.poolSize 65536; it was 8 KiB). A daemon
 * keeps many small buffers for a long time: peer id digests, multiaddr bytes
 * in the peer store and the DHT's routing table, relay reservations. Heap
 * snapshots of a soak's submitter 8 and 28 minutes into a run (1,800 jobs
 * apart) held 47 and then 73 whole 64 KiB pools for a few hundred bytes of such
 * values each (4.6 MiB, rising). The daemon goes back to 8 KiB pools: a
 * value left behind then keeps at most 8 KiB.
 */

/** Pool size the daemon sets (Node's default before it grew to 64 KiB). */
export const DAEMON_BUFFER_POOL_BYTES = 8 * 1024

/** Sets Buffer.poolSize for this process; pools made from now on are that size. */
export function limitBufferPool (bytes = DAEMON_BUFFER_POOL_BYTES): void {
  if (Buffer.poolSize > bytes) Buffer.poolSize = bytes
}
