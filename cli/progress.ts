/**
 * Shows an Ansible run as it happens: on a terminal one live status line
 * (play, task, host counts, elapsed time) above a log of changes and failures;
 * elsewhere plain lines. Everything goes to stderr.
 */
import type {AnsibleEvent, HostCounts, PlaybookResult} from './ansible.js';

export interface ProgressView {
  onEvent(event: AnsibleEvent): void;
  finish(): void;
}

export function createProgress(stream: NodeJS.WriteStream, live = Boolean(stream.isTTY) && process.env.TERM !== 'dumb'): ProgressView {
  const start = Date.now();
  let play = '';
  let task = '';
  const counts = {ok: 0, changed: 0, failed: 0, unreachable: 0};
  let statusShown = false;
  const elapsed = () => `${((Date.now() - start) / 1000).toFixed(1).padStart(6)}s`;
  const clear = () => {
    if (live && statusShown) stream.write('\r\x1b[K');
    statusShown = false;
  };
  const status = () => {
    if (!live) return;
    const width = stream.columns || 100;
    const line = `[${elapsed()}] ${task || play} | ok ${counts.ok} changed ${counts.changed} failed ${counts.failed} unreachable ${counts.unreachable}`;
    stream.write(`\r\x1b[K${line.length > width - 1 ? line.slice(0, width - 2) + '…' : line}`);
    statusShown = true;
  };
  const log = (line: string) => {
    clear();
    stream.write(`[${elapsed()}] ${line}\n`);
    status();
  };
  const timer = live ? setInterval(status, 250) : undefined;
  timer?.unref();

  return {
    onEvent(e) {
      switch (e.event) {
        case 'play_start':
          play = e.play;
          log(`PLAY ${e.play}`);
          break;
        case 'task_start':
          task = e.task.replace(/^externalip : /, '');
          if (live) status();
          else log(`TASK ${task}`);
          break;
        case 'ok':
          counts.ok++;
          for (const w of e.warnings ?? []) log(`WARNING: ${e.host}: ${w}`);
          if (e.changed) {
            counts.changed++;
            log(`changed: ${e.host}: ${e.task.replace(/^externalip : /, '')}`);
          }
          break;
        case 'failed':
          if (e.ignored) break;
          counts.failed++;
          log(`FAILED: ${e.host}: ${e.task.replace(/^externalip : /, '')}: ${firstLine(e.msg)}`);
          break;
        case 'unreachable':
          counts.unreachable++;
          log(`UNREACHABLE: ${e.host}: ${firstLine(e.msg)}`);
          break;
        default:
          break;
      }
    },
    finish() {
      if (timer) clearInterval(timer);
      clear();
    },
  };
}

function firstLine(text: string): string {
  const line = (text ?? '').trim().split('\n')[0];
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** The per-host summary printed at the end of a run. */
export function summaryLines(result: PlaybookResult): string[] {
  const hosts = Object.entries(result.hosts);
  if (!hosts.length) return [];
  const width = Math.max(4, ...hosts.map(([h]) => h.length));
  const cell = (c: HostCounts) => `ok=${c.ok}  changed=${c.changed}  failed=${c.failed}  unreachable=${c.unreachable}  skipped=${c.skipped}`;
  return [`${'HOST'.padEnd(width)}  RESULT`, ...hosts.map(([h, c]) => `${h.padEnd(width)}  ${cell(c)}`)];
}
