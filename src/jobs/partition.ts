/**
 * Splitting input on record boundaries. Pure: bytes in, views out (no copies).
 */

/** Partition size aimed at when the user gives no count. */
export const TARGET_PARTITION_BYTES = 1024 * 1024

export const MAX_PARTITIONS = 10_000

/** A sensible partition count for `sizeBytes` of input: ~1 MiB each, at least 1. */
export function defaultPartitions (sizeBytes: number): number {
  return Math.min(MAX_PARTITIONS, Math.max(1, Math.ceil(sizeBytes / TARGET_PARTITION_BYTES)))
}

/**
 * Splits `bytes` into at most `count` parts of about equal size, each ending
 * just after a `separator` byte (the last one at the end of the input), so no
 * record is cut in two. Fewer parts come back when there are fewer records
 * than parts; empty input gives one empty part.
 */
export function splitRecords (bytes: Uint8Array, count: number, separator = 0x0a): Uint8Array[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('partition count must be a positive integer')
  if (bytes.byteLength === 0) return [bytes]
  const parts: Uint8Array[] = []
  let start = 0
  for (let i = 1; i <= count && start < bytes.byteLength; i++) {
    let end = i === count ? bytes.byteLength : Math.max(start + 1, Math.round(bytes.byteLength * i / count))
    if (end < bytes.byteLength) {
      const next = bytes.indexOf(separator, end - 1)
      end = next === -1 ? bytes.byteLength : next + 1
    }
    parts.push(bytes.subarray(start, end))
    start = end
  }
  return parts
}
