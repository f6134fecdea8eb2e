/** What every extip command shares: error reporting with the documented exit codes. */
import {Command} from '@oclif/core';
import {ExitCode, ExtipError, UserError} from '../lib/errors.js';

export abstract class BaseCommand extends Command {
  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<void> {
    if (err instanceof ExtipError) {
      // Written directly: oclif's logToStderr says nothing under --json, and a script
      // must still learn what went wrong (as JSON on stdout, the text on stderr).
      process.stderr.write(`Error: ${err.message}\n`);
      const hint = err instanceof UserError ? err.hint : undefined;
      if (hint) process.stderr.write(`Hint: ${hint}\n`);
      if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({error: {kind: err.name, message: err.message, ...(hint ? {hint} : {}), exitCode: err.exitCode}})}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    // oclif's own parse errors (unknown flag, missing argument) are usage errors.
    if (err.oclif?.exit !== undefined && err.oclif.exit !== 0 && !(err.name === 'ExitError')) {
      process.exitCode = ExitCode.usage;
      this.logToStderr(`Error: ${err.message}`);
      this.logToStderr(`See: ${this.config.bin} ${this.id ?? ''} --help`);
      return;
    }
    throw err;
  }

  /** Progress and notes: always stderr, so stdout carries only data. */
  protected note(message: string): void {
    this.logToStderr(message);
  }
}
