/**
 * Whether a setup leaves claims mode a node to fail over to: how many
 * controllers it runs (a DaemonSet on every labelled node; a Deployment's
 * replicas, one a node at most, since they share the node's network), and
 * what preflight and doctor refuse. The role's filter extip_failover_errors
 * says the same, message for message: both run test/fixtures/failover-cases.json.
 */

export interface ControllerSetup {
  kind: 'DaemonSet' | 'Deployment';
  replicas: number;
  /** Nodes that carry (or will carry) extip_node_label. */
  labelled: number;
  claims: boolean;
  allowNoFailover: boolean;
}

/** The controllers that can run: one a labelled node at most. */
export function controllerCount(s: Pick<ControllerSetup, 'kind' | 'replicas' | 'labelled'>): number {
  return s.kind === 'DaemonSet' ? s.labelled : Math.min(s.replicas, s.labelled);
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function failoverErrors(s: ControllerSetup): string[] {
  const errors: string[] = [];
  if (s.kind === 'Deployment' && s.replicas > s.labelled) {
    errors.push(
      `extip_ctrl_replicas is ${s.replicas}, but ${plural(s.labelled, 'node carries', 'nodes carry')} the node label: each controller runs on a node of its own (they share its network), so the others would stay Pending. Lower extip_ctrl_replicas, or label more nodes (add them to the kube_node group).`,
    );
  }
  const count = controllerCount(s);
  if (s.claims && count < 2 && !s.allowNoFailover) {
    const why = s.kind === 'Deployment' ? `extip_ctrl_app_kind: Deployment with extip_ctrl_replicas: ${s.replicas}` : `extip_ctrl_app_kind: DaemonSet over ${plural(s.labelled, 'labelled node', 'labelled nodes')}`;
    errors.push(
      `Claims mode moves a lost node's addresses to another node's controller, but this setup runs ${plural(count, 'controller', 'controllers')} (${why}): a lost node's addresses would stay down until it returns. Set extip_ctrl_app_kind: DaemonSet over two or more labelled nodes, or extip_ctrl_replicas: 2 or more, or extip_allow_no_failover: true to accept that.`,
    );
  }
  return errors;
}
