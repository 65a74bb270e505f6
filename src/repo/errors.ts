import { LeptonError } from '../errors.ts'

export class RepoNotFoundError extends LeptonError {
  override name = 'RepoNotFoundError'
}

export class RepoExistsError extends LeptonError {
  override name = 'RepoExistsError'
}

export class RepoLockedError extends LeptonError {
  override name = 'RepoLockedError'
}

export class ConfigError extends LeptonError {
  override name = 'ConfigError'
}

export class RepoVersionError extends LeptonError {
  override name = 'RepoVersionError'
}

/** A swarm key file that is missing, unreadable or not in the v1 pnet format. */
export class SwarmKeyError extends LeptonError {
  override name = 'SwarmKeyError'
}
