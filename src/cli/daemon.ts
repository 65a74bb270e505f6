import { createLogger } from '../log.ts'
import { LOG_LEVELS, readConfig, repoExists, resolveRepoPath } from '../repo/index.ts'
import { VERSION } from '../version.ts'
import { UsageError, expectPositionals, flag, intFlag, list, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'
import type { LogLevel } from '../repo/index.ts'

/** SIGINT/SIGTERM must end the process within 3 s even if a stop step hangs. */
const STOP_DEADLINE_MS = 2800

export const daemon: Command = {
  name: 'daemon',
  summary: 'Run the lepton daemon: join the mesh, serve the control API. Creates the repo on first run.\nPrints its peer id and dialable addresses; give one to other machines as --bootstrap.',
  options: {
    ...repoFlag,
    listen: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'swarm listen address (default from config: /ip4/0.0.0.0/tcp/4680)' },
    bootstrap: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'peer to join the mesh through, e.g. /ip4/10.0.0.5/tcp/4680/p2p/12D3...' },
    api: { type: 'string', valueName: 'HOST:PORT', description: 'control API address (default from config: 127.0.0.1:4681)' },
    'api-public': { type: 'boolean', description: 'allow --api on a non-loopback address (config "apiPublic": true); anyone who reaches it with the token controls the daemon' },
    'log-level': { type: 'string', valueName: 'LEVEL', description: `one of ${LOG_LEVELS.join(', ')} (default from config: info)` },
    mdns: { type: 'boolean', description: 'also find peers on the LAN by multicast DNS' },
    'no-relay': { type: 'boolean', description: 'neither relay for other peers nor send traffic along detours (config: "relay": false)' },
    slots: { type: 'string', valueName: 'N', description: 'tasks this peer runs at once for the mesh; 0 runs none (default from config: CPU count)' },
    'memory-saver': { type: 'boolean', description: 'use less memory for more CPU: every 30 s V8 hands back the heap pages it keeps pooled (in 20-daemon soaks ~10 MiB less RSS a daemon, 10-45% more CPU a job)' }
  },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const repo = resolveRepoPath(str(parsed, 'repo'))
    const levelFlag = str(parsed, 'log-level')
    if (levelFlag != null && !(LOG_LEVELS as readonly string[]).includes(levelFlag)) {
      throw new UsageError(`unknown log level "${levelFlag}"; use one of ${LOG_LEVELS.join(', ')}`)
    }
    const slots = intFlag(parsed, 'slots', 0, 1024)
    const level = (levelFlag ?? (await repoExists(repo) ? (await readConfig(repo)).logLevel : 'info')) as LogLevel
    const log = createLogger({ level, name: 'daemon' })
    // loaded here, not at the top: every other command starts without libp2p and the sandbox (0.37 s instead of 0.72 s here)
    const { Daemon } = await import('../daemon.ts')
    const d = await Daemon.start({
      repo,
      listen: list(parsed, 'listen'),
      bootstrap: list(parsed, 'bootstrap'),
      api: str(parsed, 'api'),
      apiPublic: flag(parsed, 'api-public') ? true : undefined,
      mdns: flag(parsed, 'mdns') ? true : undefined,
      relay: flag(parsed, 'no-relay') ? false : undefined,
      slots,
      memorySaver: flag(parsed, 'memory-saver'),
      log
    })
    const id = d.id()
    process.stdout.write([
      `lepton daemon ${VERSION}`,
      `peer id: ${id.peerId}`,
      'addresses:',
      ...id.addresses.map(a => `  ${a}`),
      `api: ${d.apiAddress}`,
      `repo: ${repo}`,
      'ready',
      ''
    ].join('\n'))
    const onSignal = (signal: string): void => {
      log.info('signal received, stopping', { signal })
      setTimeout(() => {
        log.error('clean stop took too long; exiting now', { deadlineMs: STOP_DEADLINE_MS })
        process.exit(1)
      }, STOP_DEADLINE_MS).unref()
      d.stop().catch(() => {})
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    // A promise some library left without a handler must not take down a daemon that
    // holds other peers' data and tasks: say it loudly, keep running. (Seen once in CI:
    // a TimeoutError of an AbortSignal.timeout nobody awaited any more killed a worker.)
    process.on('unhandledRejection', (reason) => {
      log.error('unhandled promise rejection (a bug; the daemon keeps running)', { err: reason, stack: (reason as Error)?.stack })
    })
    await d.stopped
    return 0
  }
}
