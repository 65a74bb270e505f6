/**
 * Builds lepton's one native helper, native/malloc-trim (see its source), with
 * node-gyp; npm runs this after installing. The helper is optional: where it
 * cannot be built (no compiler, not Linux with glibc) this says so and exits
 * 0, and daemons run without it, keeping freed native memory (~10 MiB each
 * after a few minutes of jobs). Plain JavaScript: npm may run it on any Node.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'malloc-trim')

if (process.platform !== 'linux') {
  console.log('lepton: malloc_trim helper skipped (glibc on Linux only)')
  process.exit(0)
}
// npm gives lifecycle scripts the path of its own node-gyp
const gyp = process.env.npm_config_node_gyp
const [command, ...args] = gyp != null && gyp !== '' ? [process.execPath, gyp] : ['node-gyp']
const run = spawnSync(command, [...args, 'rebuild', '--directory', dir], { encoding: 'utf8' })
if (run.status === 0) {
  console.log('lepton: built the malloc_trim helper')
} else {
  const why = run.error?.message ?? (run.stderr ?? '').trim().split('\n').slice(-5).join('\n')
  console.warn(`lepton: could not build the malloc_trim helper (native/malloc-trim); daemons will run without it.\n${why}`)
}
