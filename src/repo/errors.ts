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
