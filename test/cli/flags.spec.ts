import { describe, expect, it } from 'vitest'
import { intFlag, secondsFlag, timeoutMs } from '../../src/cli/command.ts'
import type { ParsedArgs } from '../../src/cli/command.ts'

const args = (values: Record<string, string>): ParsedArgs => ({ values, positionals: [] }) as unknown as ParsedArgs

describe('shared CLI flag parsing', () => {
  it('integers: absent is undefined, bounds are enforced and named in the error', () => {
    expect(intFlag(args({}), 'slots', 0, 1024)).toBeUndefined()
    expect(intFlag(args({ slots: '0' }), 'slots', 0, 1024)).toBe(0)
    expect(intFlag(args({ slots: '1024' }), 'slots', 0, 1024)).toBe(1024)
    expect(() => intFlag(args({ slots: '1025' }), 'slots', 0, 1024)).toThrow('--slots must be an integer from 0 to 1024, not "1025"')
    expect(() => intFlag(args({ replicas: '0' }), 'replicas', 1)).toThrow('--replicas must be an integer of at least 1, not "0"')
    expect(() => intFlag(args({ replicas: '2.5' }), 'replicas', 1)).toThrow(/integer/)
    expect(() => intFlag(args({ replicas: 'three' }), 'replicas', 1)).toThrow(/not "three"/)
    expect(intFlag(args({ replicas: '3' }), 'replicas', 1)).toBe(3)
  })

  it('seconds: positive numbers only; --timeout becomes milliseconds', () => {
    expect(secondsFlag(args({}), 'timeout')).toBeUndefined()
    expect(secondsFlag(args({ timeout: '1.5' }), 'timeout')).toBe(1.5)
    expect(timeoutMs(args({ timeout: '1.5' }))).toBe(1500)
    expect(() => secondsFlag(args({ timeout: '0' }), 'timeout')).toThrow('--timeout must be a positive number of seconds, not "0"')
    expect(() => timeoutMs(args({ timeout: 'soon' }))).toThrow(/positive number of seconds/)
  })
})
