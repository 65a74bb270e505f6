/** How jobs look in the terminal: one progress line, a result, a task table. */
import { JobFailedError } from '../api/index.ts'
import { printJson, printTable } from './command.ts'
import type { JobDetail, JobSummary } from '../jobs/index.ts'

export function renderJobLine (d: JobSummary): string {
  const t = d.tasks
  const width = 24
  const filled = t.total === 0 ? width : Math.round(t.done / t.total * width)
  const workers = Object.keys(d.workers).length
  return `${d.jobId} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${t.done}/${t.total} done, ${t.running} running, ${t.failed} failed, ${workers} worker${workers === 1 ? '' : 's'}, ${(d.elapsedMs / 1000).toFixed(1)} s`
}

/** Prints a finished job's result (or throws its failure); the exit code. */
export function showResult (d: JobDetail, json: boolean): number {
  if (d.state !== 'succeeded') throw new JobFailedError(d.jobId, d.state, `job ${d.jobId} ${d.state}: ${d.error ?? 'no reason given'}`)
  if (json) {
    printJson({ jobId: d.jobId, resultCid: d.resultCid, result: d.result, tasks: d.tasks, workers: d.workers, elapsedMs: d.elapsedMs, disagreements: d.disagreements })
    return 0
  }
  process.stdout.write(`${typeof d.result === 'string' ? d.result : JSON.stringify(d.result, null, 2)}\n`)
  const workers = Object.entries(d.workers).map(([w, n]) => `${w.slice(-8)}: ${n}`).join(', ')
  process.stderr.write(`job ${d.jobId}: ${d.tasks.total} tasks (${d.tasks.runs} runs${d.tasks.cached > 0 ? `, ${d.tasks.cached} from lineage` : ''}) in ${(d.elapsedMs / 1000).toFixed(2)} s on ${workers || 'no workers'}; result ${d.resultCid ?? ''}\n`)
  if (d.disagreements.length > 0) process.stderr.write(`outvoted: ${d.disagreements.map(x => `${x.worker} on task ${x.task}`).join(', ')}\n`)
  return 0
}

export function printTaskTable (d: JobDetail): void {
  printTable(['TASK', 'STATE', 'RUNS', 'WORKER', 'OUTPUT'], d.taskList.map(t => [
    String(t.index),
    t.state + (t.cached ? ' (lineage)' : ''),
    String(t.runs),
    (t.doneBy.length > 0 ? t.doneBy : t.running).map(w => w.slice(-8)).join(',') || '-',
    t.outputCid ?? (t.errors.at(-1) ?? '-')
  ]))
}
