/**
 * The swarm key of a private mesh: libp2p's pre-shared key (pnet) in the
 * standard v1 text format, the one go-ipfs and js-libp2p read:
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits: 32 random bytes>
 *
 * Every peer of a private mesh holds the same key; a peer without it cannot
 * complete a connection (the bytes it sees are XSalsa20 noise).
 */
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'
import { SwarmKeyError } from './errors.ts'

export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
export const SWARM_KEY_CODEC = '/base16/'
/** Bytes of the key itself. */
export const SWARM_KEY_BYTES = 32

/** The advice every bad-key error ends with. */
const ADVICE = 'generate one with "lepton key gen"'

/** A fresh random swarm key in the v1 text format (with a final newline). */
export function generateSwarmKey (): string {
  return formatSwarmKey(randomBytes(SWARM_KEY_BYTES).toString('hex'))
}

function formatSwarmKey (hex: string): string {
  return `${SWARM_KEY_HEADER}\n${SWARM_KEY_CODEC}\n${hex}\n`
}

/**
 * Validates a swarm key file's text and returns it in canonical form (LF line
 * ends, lower-case hex, final newline), the bytes libp2p's pnet protector takes.
 * Throws SwarmKeyError naming `source` and what is wrong.
 */
export function parseSwarmKey (text: string, source: string): string {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).map(l => l.trim())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const bad = (why: string): never => {
    throw new SwarmKeyError(`${source} is not a swarm key (${why}); ${ADVICE}`)
  }
  if (lines[0] !== SWARM_KEY_HEADER) bad(`first line must be ${SWARM_KEY_HEADER}`)
  if (lines[1] !== SWARM_KEY_CODEC) bad(lines[1]?.startsWith('/') === true ? `encoding ${lines[1]} is not supported, only ${SWARM_KEY_CODEC}` : `second line must be ${SWARM_KEY_CODEC}`)
  const hex = lines[2] ?? ''
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== SWARM_KEY_BYTES * 2) bad(`third line must be ${SWARM_KEY_BYTES * 2} hex digits`)
  if (lines.length > 3) bad('unexpected text after the key')
  return formatSwarmKey(hex.toLowerCase())
}

/** Longest swarm key file read: the key is 89 bytes; anything much longer is not one. */
const MAX_SWARM_KEY_FILE_BYTES = 1024

/**
 * Reads and validates the swarm key in `file`; a missing or unreadable file,
 * or one that is not a key, is a SwarmKeyError with advice.
 */
export async function readSwarmKeyFile (file: string): Promise<string> {
  let text: string
  try {
    const handle = await open(file, 'r')
    try {
      // one bounded read: a key file is tiny, and a device or a huge file must not hang us
      const buf = Buffer.alloc(MAX_SWARM_KEY_FILE_BYTES + 1)
      const { bytesRead } = await handle.read(buf, 0, buf.byteLength, 0)
      if (bytesRead > MAX_SWARM_KEY_FILE_BYTES) throw new SwarmKeyError(`${file} is not a swarm key (over ${MAX_SWARM_KEY_FILE_BYTES} bytes); ${ADVICE}`)
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    if (err instanceof SwarmKeyError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new SwarmKeyError(`cannot read swarm key file ${file} (${code}); check the path, or ${ADVICE}`)
  }
  return parseSwarmKey(text, file)
}
