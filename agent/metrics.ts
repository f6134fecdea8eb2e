/** The agent's counters, served as Prometheus text on /metrics. */
export class Metrics {
  desired = 0;
  applied = 0;
  skipped = 0;
  reconciles = 0;
  errors = 0;
  apiErrors = 0;
  /** claimcontroller: addresses kept down because another host answers for them. */
  conflicts = 0;
  durationSum = 0;
  /** Reconciles that failed in a row, up to the last one (0: the last one succeeded). */
  failingPasses = 0;
  /** Service entries the address policy refused at the last reconcile, by rule. */
  refused: Record<string, number> = {};
  /** More lines from other parts of the agent (the BGP speaker's). */
  readonly sources: Array<() => string> = [];

  observe(seconds: number): void {
    this.reconciles++;
    this.durationSum += seconds;
  }

  text(): string {
    const lines = [
      ['extip_desired_addresses', 'gauge', 'Addresses the Services ask for.', this.desired],
      ['extip_applied_addresses', 'gauge', 'Addresses up on the interface after the last reconcile.', this.applied],
      ['extip_skipped_entries', 'gauge', 'Service entries skipped: not an IP, or already on another interface.', this.skipped],
      ['extip_reconciles_total', 'counter', 'Reconciles run.', this.reconciles],
      ['extip_reconcile_errors_total', 'counter', 'Reconciles that failed, fully or in part.', this.errors],
      ['extip_api_errors_total', 'counter', 'Failed lists and watches of Services.', this.apiErrors],
      ['extip_failing_reconciles', 'gauge', 'Reconciles that failed in a row up to the last one; 0 when the last succeeded.', this.failingPasses],
      ['extip_address_conflicts', 'gauge', 'Claimed addresses kept down because another host on the link answers for them.', this.conflicts],
    ] as const;
    const out: string[] = [];
    for (const [name, type, help, value] of lines) out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    out.push('# HELP extip_refused_addresses Service entries not brought up because the address policy refuses them, by rule.', '# TYPE extip_refused_addresses gauge');
    for (const [rule, n] of Object.entries(this.refused)) out.push(`extip_refused_addresses{rule="${rule}"} ${n}`);
    out.push(
      '# HELP extip_reconcile_duration_seconds Time spent reconciling.',
      '# TYPE extip_reconcile_duration_seconds summary',
      `extip_reconcile_duration_seconds_sum ${this.durationSum.toFixed(6)}`,
      `extip_reconcile_duration_seconds_count ${this.reconciles}`,
    );
    return out.join('\n') + '\n' + this.sources.map((source) => source()).join('');
  }
}
