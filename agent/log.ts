/** glog-style lines on stderr: I/W/E, time, message; --v sets how much info is shown. */
export interface Logger {
  info(level: number, message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

function stamp(kind: string): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${kind}${pad(d.getMonth() + 1)}${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)} ${process.pid}]`;
}

export function createLogger(verbosity: number): Logger {
  return {
    info: (level, message) => {
      if (level <= verbosity) process.stderr.write(`${stamp('I')} ${message}\n`);
    },
    warn: (message) => process.stderr.write(`${stamp('W')} ${message}\n`),
    error: (message) => process.stderr.write(`${stamp('E')} ${message}\n`),
  };
}

/** An error in one line for the log: the network code when there is one, else the first line of its message. */
export function describe(err: unknown): string {
  const e = err as {message?: string; cause?: {code?: string}; code?: string | number};
  return String(e.cause?.code ?? e.message ?? err).split('\n')[0];
}

/**
 * A warning said once per distinct message: what a pass skips (a Service's
 * address already on another interface) is reported the first time, not at
 * every pass.
 */
export function onceEach(log: Logger): (message: string) => void {
  const said = new Set<string>();
  return (message) => {
    if (said.has(message)) return;
    said.add(message);
    log.warn(message);
  };
}
