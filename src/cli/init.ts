import { checkMultiaddr, defaultConfig, initRepo, parseHostPort, resolveRepoPath } from '../repo/index.ts'
import { expectPositionals, flag, jsonFlag, list, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const init: Command = {
  name: 'init',
  summary: 'Create a repo: identity key, config, API token and datastore. Refuses to overwrite an existing repo.',
  options: {
    ...repoFlag,
    listen: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'swarm listen address to save in the config' },
    bootstrap: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'bootstrap peer to save in the config' },
    api: { type: 'string', valueName: 'HOST:PORT', description: 'control API address to save in the config' },
    ...jsonFlag
  },
  async run (parsed) {
    expectPositionals(this, parsed, 0)
    const path = resolveRepoPath(str(parsed, 'repo'))
    const config = defaultConfig()
    const listen = list(parsed, 'listen')
    const bootstrap = list(parsed, 'bootstrap')
    const api = str(parsed, 'api')
    if (listen != null) config.listen = listen.map(a => checkMultiaddr(a, '--listen'))
    if (bootstrap != null) config.bootstrap = bootstrap.map(a => checkMultiaddr(a, '--bootstrap'))
    if (api != null) {
      parseHostPort(api, '--api address')
      config.api = api
    }
    await initRepo(path, { config })
    if (flag(parsed, 'json')) printJson({ repo: path })
    else process.stdout.write(`initialised lepton repo at ${path}\nstart the daemon with: lepton daemon --repo ${path}\n`)
    return 0
  }
}
