/**
 * `lepton` entry point: picks the command, parses its flags, runs it, and turns
 * errors into one line and an exit code. Commands only call the client.
 */
import { LeptonError } from '../errors.ts'
import { VERSION } from '../version.ts'
import { UsageError, helpText, parseCommandArgs } from './command.ts'
import { add } from './add.ts'
import { cat } from './cat.ts'
import { daemon } from './daemon.ts'
import { gc } from './gc.ts'
import { get } from './get.ts'
import { id } from './id.ts'
import { init } from './init.ts'
import { key } from './key.ts'
import { peers } from './peers.ts'
import { pin } from './pin.ts'
import { providers } from './providers.ts'
import { routes } from './routes.ts'
import { rtt } from './rtt.ts'
import { stat } from './stat.ts'
import { status } from './status.ts'
import { stop } from './stop.ts'
import { submit } from './submit.ts'
import { jobs } from './jobs.ts'
import { job } from './job.ts'
import { cancel } from './cancel.ts'
import { execDaemonWithFlags } from './node-flags.ts'
import type { Command } from './command.ts'

const COMMANDS: Command[] = [init, key, daemon, id, peers, rtt, routes, status, stop, add, cat, get, stat, providers, pin, gc, submit, jobs, job, cancel]

function usage (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length))
  return [
    `lepton ${VERSION}: a peer-to-peer compute mesh`,
    '',
    'Usage: lepton COMMAND [options]',
    '',
    'Commands:',
    ...COMMANDS.map(c => `  ${c.name.padEnd(width)}  ${c.summary.split('\n')[0] ?? ''}`),
    '',
    'Run "lepton COMMAND --help" for the options of one command.'
  ].join('\n')
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name == null || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return name == null ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`)
    return 0
  }
  const cmd = COMMANDS.find(c => c.name === name)
  try {
    if (cmd == null) throw new UsageError(`unknown command "${name}"; run "lepton --help" for the list`)
    const parsed = parseCommandArgs(cmd, rest)
    if (parsed.values.help === true) {
      process.stdout.write(helpText(cmd) + '\n')
      return 0
    }
    return await cmd.run(parsed) ?? 0
  } catch (err) {
    const e = err as Error
    if (e instanceof LeptonError) {
      process.stderr.write(`lepton: ${e.message}\n`)
      return e instanceof UsageError ? 2 : 1
    }
    process.stderr.write(`lepton: unexpected error: ${e.message}\n`)
    if (process.env.LEPTON_DEBUG != null) process.stderr.write(`${e.stack ?? ''}\n`)
    else process.stderr.write('lepton: set LEPTON_DEBUG=1 for the stack trace, and please report it\n')
    return 1
  }
}

if (import.meta.main) {
  // bin/lepton.js does this before loading the CLI; here for `node dist/cli/main.js daemon`
  execDaemonWithFlags()
  process.exit(await main(process.argv.slice(2)))
}
