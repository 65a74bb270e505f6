import type { LogLevel } from './repo/index.ts'

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }

export interface Logger {
  error(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  debug(event: string, fields?: Record<string, unknown>): void
  /** A logger whose events are prefixed with `name:`. */
  child(name: string): Logger
}

export interface LoggerInit {
  level?: LogLevel
  /** Where lines go; stderr by default. */
  write?(line: string): void
  name?: string
}

function formatValue (value: unknown): string {
  // named errors keep their name: it says what failed (e.g. EncryptionFailedError: a handshake)
  if (value instanceof Error) return JSON.stringify(value.name !== 'Error' ? `${value.name}: ${value.message}` : value.message)
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return /[\s"=]/.test(text ?? '') ? JSON.stringify(text) : String(text)
}

/**
 * One line per event: `TIME LEVEL name: event key=value ...`. Errors are logged
 * by message; stacks only at debug level, for the unexpected.
 */
export function createLogger (init: LoggerInit = {}): Logger {
  const threshold = RANK[init.level ?? 'info']
  const write = init.write ?? ((line: string) => { process.stderr.write(line + '\n') })
  const make = (name: string): Logger => {
    const emit = (level: LogLevel, event: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] > threshold) return
      const parts = [new Date().toISOString(), level.padEnd(5), `${name}: ${event}`]
      for (const [k, v] of Object.entries(fields ?? {})) {
        if (v !== undefined) parts.push(`${k}=${formatValue(v)}`)
      }
      write(parts.join(' '))
    }
    return {
      error: (e, f) => { emit('error', e, f) },
      warn: (e, f) => { emit('warn', e, f) },
      info: (e, f) => { emit('info', e, f) },
      debug: (e, f) => { emit('debug', e, f) },
      child: (sub) => make(`${name}.${sub}`)
    }
  }
  return make(init.name ?? 'lepton')
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = createLogger({ write: () => {} })
