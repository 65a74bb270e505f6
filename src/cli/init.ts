import { checkMultiaddr, defaultConfig, initRepo, parseHostPort, readSwarmKeyFile, resolveRepoPath } from '../repo/index.ts'
import { expectPositionals, flag, jsonFlag, list, printJson, repoFlag, str } from './command.ts'
import type { Command } from './command.ts'

export const init: Command = {
  name: 'init',
  summary: 'Create a repo: identity key, config, API token and datastore. Refuses to overwrite an existing repo.\nWith --swarm-key the repo joins a private mesh: only peers holding the same key can connect.',
  options: {
    ...repoFlag,
    listen: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'swarm listen address to save in the config' },
    bootstrap: { type: 'string', multiple: true, valueName: 'MULTIADDR', description: 'bootstrap peer to save in the config' },
    api: { type: 'string', valueName: 'HOST:PORT', description: 'control API address to save in the config' },
    'api-public': { type: 'boolean', description: 'save "apiPublic": true, allowing a non-loopback --api address' },
    'swarm-key': { type: 'string', valueName: 'FILE', description: 'copy this swarm key (from "lepton key gen") into the repo: a private mesh' },
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
    if (flag(parsed, 'api-public')) config.apiPublic = true
    const keyFile = str(parsed, 'swarm-key')
    // read and checked before the repo exists, so a bad key leaves nothing behind
    const swarmKey = keyFile == null ? undefined : await readSwarmKeyFile(keyFile)
    await initRepo(path, { config, swarmKey })
    if (flag(parsed, 'json')) printJson({ repo: path, private: swarmKey != null })
    else process.stdout.write(`initialised lepton repo at ${path}${swarmKey != null ? ' (private mesh: swarm.key)' : ''}\nstart the daemon with: lepton daemon --repo ${path}\n`)
    return 0
  }
}
