import {Flags} from '@oclif/core';
import {BaseCommand} from '../base.js';
import {ExitCode} from '../../lib/errors.js';
import {loadKubeConfig, readCluster} from '../kube.js';
import {type StatusReport, assess, formatStatus} from '../status.js';

export default class Status extends BaseCommand {
  static override summary = 'Show the mode, the controllers on the labelled nodes, where each external IP is held, and what looks wrong.';

  static override description = `Reads the cluster with the kubeconfig from --kubeconfig, else KUBECONFIG, else ~/.kube/config. Exits 0 when everything looks right, 6 when it found problems (a Service IP no controller holds, a labelled node without a ready controller, a claim on a node without one), 5 when the API cannot be reached, so it can be used from scripts and monitoring.`;

  static override examples = [
    {description: 'The current state', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'For monitoring', command: '<%= config.bin %> <%= command.id %> --json --kubeconfig /etc/kubernetes/admin.conf'},
  ];

  static override enableJsonFlag = true;
  static override flags = {
    kubeconfig: Flags.string({summary: 'Kubeconfig file (default: KUBECONFIG, then ~/.kube/config).'}),
  };

  async run(): Promise<StatusReport> {
    const {flags} = await this.parse(Status);
    const report = assess(await readCluster(loadKubeConfig(flags.kubeconfig)));
    if (!this.jsonEnabled()) this.log(formatStatus(report));
    process.exitCode = report.problems.length ? ExitCode.problemsFound : ExitCode.ok;
    return report;
  }
}
