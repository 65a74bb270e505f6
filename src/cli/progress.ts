/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export interface Progress {
  update(doneBytes: number): void
  done(): void
}

const MIB = 1024 * 1024

export function progressBar (label: string, totalBytes?: number): Progress {
  const tty = process.stderr.isTTY === true
  const started = performance.now()
  let last = 0
  let lastDraw = 0
  const draw = (): void => {
    const secs = (performance.now() - started) / 1000
    const rate = secs > 0 ? last / MIB / secs : 0
    let line = `${label} ${(last / MIB).toFixed(1)}`
    if (totalBytes != null && totalBytes > 0) {
      const share = Math.min(1, last / totalBytes)
      const width = 24
      const filled = Math.round(share * width)
      line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${(last / MIB).toFixed(1)}/${(totalBytes / MIB).toFixed(1)}`
    }
    process.stderr.write(`\r${line} MiB  ${rate.toFixed(1)} MiB/s\x1b[K`)
  }
  return {
    update (doneBytes) {
      last = doneBytes
      if (!tty) return
      const now = performance.now()
      if (now - lastDraw < 100) return
      lastDraw = now
      draw()
    },
    done () {
      if (!tty) return
      draw()
      process.stderr.write('\n')
    }
  }
}
