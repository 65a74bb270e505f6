/** Version of the on-disk layout; bumped when a migration is needed. */
export const REPO_VERSION = 1

/** Version of config.json's schema. */
export const CONFIG_VERSION = 1

export const FILES = {
  version: 'version',
  config: 'config.json',
  identity: 'identity.key',
  token: 'api.token',
  swarmKey: 'swarm.key',
  lock: 'daemon.lock',
  datastore: 'datastore'
} as const

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4680']
export const DEFAULT_API = '127.0.0.1:4681'
