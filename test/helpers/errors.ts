/** Awaits `promise`, expecting it to reject; returns the error. */
export async function rejection (promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/** Calls `fn`, expecting it to throw; returns the error. */
export function catchSync (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the call to throw, but it returned')
}
