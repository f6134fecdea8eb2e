/**
 * The one declaration of every `extip_*` variable.
 *
 * The role's `defaults/main.yml`, `meta/argument_specs.yml` and
 * `tasks/validate.yml`, the README's variable table and the CLI's validation
 * are all generated from this list (see generate.ts); test/unit/generated.test.ts
 * fails when a committed file drifts from it.
 */
import {type Rule, bool, choice, cidr, cidrList, integer, mask, nameList, pattern, pools, text, birdBody} from './rules.js';

export type Value = string | number | boolean | null | Value[] | {[key: string]: Value};

export type Section = 'general' | 'addresses' | 'controller' | 'scheduler' | 'pools' | 'cluster' | 'calico';

export interface Variable {
  name: string;
  section: Section;
  /** The value in the role's defaults; a string with `{{ }}` is passed to Ansible untouched. */
  default: Value;
  rule: Rule;
  /** One line for tables and --help. */
  summary: string;
  /** A paragraph for the defaults file. */
  description: string;
  /** A good value, shown when a value is rejected. */
  example: Value;
  /** The extip version that introduced it; "kargo" marks the original Kargo role's variables. */
  since: string;
  /** Older names that are still read (the original role's `k8s_namespace`). */
  aliases?: readonly string[];
  /** Why it is no longer used, if it is not. */
  deprecated?: string;
}

export const SEED_FILTER_V4 = `if ( ifname = "lo" ) then {
  if net != 127.0.0.0/8 then accept;
}
`;

export const SEED_FILTER_V6 = `if ( ifname = "lo" ) then {
  if net != ::1/128 then accept;
}
`;

const durationRule = pattern('duration', 'a Go duration such as 500ms, 1s, 2m or 1h30m');
const imagePullPolicy = choice(['Always', 'IfNotPresent', 'Never']);
const labelKey = pattern('labelKey', 'a Kubernetes label key: [prefix/]name, name at most 63 characters of [A-Za-z0-9-_.]', 317);
const labelValue = pattern('labelValue', 'a Kubernetes label value: at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends', 63);
const objectName = pattern('dnsSubdomain', 'a Kubernetes object name: lowercase letters, digits, "-" and "."', 253);
const absPath = pattern('absPath', 'an absolute path without spaces or shell metacharacters');

export const catalogue: readonly Variable[] = [
  // --- general -----------------------------------------------------------
  {
    name: 'extip_state',
    section: 'general',
    default: 'present',
    rule: choice(['present', 'absent']),
    summary: 'Install (present) or remove (absent) everything extip manages.',
    description:
      'present installs or updates the controller; absent reverses everything an install did: workloads, RBAC, CRDs, pools, node labels, the Calico export and the external IPs on the nodes. `extip uninstall` and playbooks/externalip-uninstall.yml set it for you.',
    example: 'present',
    since: '0.1.0',
  },
  {
    name: 'extip_distribution',
    section: 'general',
    default: 'balance',
    rule: choice(['balance', 'single', 'all']),
    summary: 'How external IPs are spread over the labelled nodes.',
    description:
      'all: every labelled node brings up every external IP (ECMP; naive mode, no scheduler or CRDs). balance: claims mode, each IP on one node, spread evenly (scheduler --nodefilter=fair). single: claims mode, all IPs on the first live node (--nodefilter=first-alive).',
    example: 'all',
    since: 'kargo',
  },
  {
    name: 'extip_iface',
    section: 'general',
    default: 'eth0',
    rule: pattern('iface', 'a Linux interface name: 1 to 15 characters of [A-Za-z0-9_.-], not "." or ".."'),
    summary: 'Interface the external IPs are brought up on (lo for ECMP).',
    description: 'Must exist on every target node; preflight checks it. Use lo with extip_mask 32 for ECMP with a BGP speaker.',
    example: 'lo',
    since: 'kargo',
  },
  {
    name: 'extip_mask',
    section: 'general',
    default: 24,
    rule: mask,
    summary: 'Prefix length the external IPs get on the interface.',
    description: '1..32 for IPv4, 1..128 for IPv6 (see extip_ip_family). Use 32 (or 128) on lo for ECMP.',
    example: 32,
    since: 'kargo',
  },
  {
    name: 'extip_ip_family',
    section: 'general',
    default: 'ipv4',
    rule: choice(['ipv4', 'ipv6']),
    summary: 'Address family of the external IPs; sets the range of extip_mask.',
    description: 'ipv4 allows masks 1..32, ipv6 allows 1..128.',
    example: 'ipv4',
    since: '0.1.0',
  },
  {
    name: 'extip_namespace',
    section: 'general',
    default: "{{ k8s_namespace | default('default') }}",
    rule: pattern('dnsLabel', 'a Kubernetes namespace name: lowercase letters, digits and "-", at most 63 characters', 63),
    summary: 'Namespace of the controller and scheduler workloads.',
    description:
      'The original role called this k8s_namespace, which is still read when extip_namespace is not set. extip creates the namespace if it is missing and removes it on uninstall only if it created it.',
    example: 'kube-system',
    since: '0.1.0',
    aliases: ['k8s_namespace'],
  },
  {
    name: 'extip_node_label',
    section: 'general',
    default: 'externalip',
    rule: labelKey,
    summary: 'Label key that marks the nodes which run the controller.',
    description: 'Every target host gets <extip_node_label>=<extip_node_label_value>; the controller workload selects on it.',
    example: 'externalip',
    since: 'kargo',
  },
  {
    name: 'extip_node_label_value',
    section: 'general',
    default: 'true',
    rule: labelValue,
    summary: 'Value of the node label.',
    description: 'The value set with extip_node_label on every target node.',
    example: 'true',
    since: '0.1.0',
  },
  {
    name: 'extip_node_name_lookup',
    section: 'general',
    default: 'inventory',
    rule: choice(['inventory', 'internal_ip']),
    summary: 'How a host finds its Kubernetes node name.',
    description:
      'inventory: kube_override_hostname, else inventory_hostname (as kubespray names nodes). internal_ip: the node whose InternalIP equals the host\'s ip (or ansible_default_ipv4.address), as the original role did.',
    example: 'inventory',
    since: '0.1.0',
  },
  {
    name: 'extip_image_repo',
    section: 'general',
    default: 'ghcr.io/extip/ipmanager',
    rule: pattern('imageRepo', 'an OCI image repository such as registry.example.com:5000/team/ipmanager (lowercase path)', 255),
    summary: 'Image repository of the controller and scheduler.',
    description: 'extip\'s own image (npm run image builds it), or any image with the ipmanager command-line contract; the upstream 2017 image (tag release-0.2.1) has none of extip\'s flags and cannot run claims mode on current Kubernetes. The original role had mirantis/k8s-externalipcontroller.',
    example: 'registry.example.com:5000/extip/ipmanager',
    since: 'kargo',
  },
  {
    name: 'extip_image_tag',
    section: 'general',
    default: '0.1.0',
    rule: pattern('imageTag', 'an OCI image tag: up to 128 characters of [A-Za-z0-9_.-], not starting with "." or "-"', 128),
    summary: 'Image tag of the controller and scheduler.',
    description: 'The tag of extip_image_repo to run: by default extip\'s version, the image npm run image builds from this checkout. The original role had release-0.2.1.',
    example: '0.1.0',
    since: 'kargo',
  },
  {
    name: 'extip_image_archive',
    section: 'general',
    default: '',
    rule: pattern('absPathOrEmpty', 'an absolute path on the control machine without spaces or shell metacharacters, or empty'),
    summary: 'Image archive to load on every target node (air-gapped clusters).',
    description:
      'npm run image\'s .oci.tar, on the control machine. Before deploying, the role copies it to each target node and imports it into containerd (ctr -n k8s.io images import) where that node does not have the image; uninstall removes the image from the nodes where extip imported it. The archive must hold extip_image_repo:extip_image_tag. Empty: the nodes pull the image.',
    example: '/srv/extip/ipmanager-0.1.0.oci.tar',
    since: '0.1.0',
  },
  {
    name: 'extip_ctr',
    section: 'general',
    default: "{{ bin_dir | default('/usr/local/bin') }}/ctr",
    rule: absPath,
    summary: 'containerd\'s ctr on the target nodes, for extip_image_archive.',
    description: 'kubespray installs it in bin_dir. It runs as ctr -n k8s.io images import|ls|rm.',
    example: '/usr/local/bin/ctr',
    since: '0.1.0',
  },
  // --- controller ----------------------------------------------------------
  {
    name: 'extip_ctrl_app',
    section: 'controller',
    default: 'claimcontroller',
    rule: objectName,
    summary: 'Name of the controller workload.',
    description: 'Also names its ServiceAccount and ClusterRole.',
    example: 'claimcontroller',
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_app_kind',
    section: 'controller',
    default: 'DaemonSet',
    rule: choice(['Deployment', 'DaemonSet']),
    summary: 'Workload kind of the controller.',
    description:
      'DaemonSet runs one controller on every labelled node; Deployment runs extip_ctrl_replicas of them, at most one a node (they share its network). The original role had Deployment. With its one replica claims mode has no other node to move an address to when its node is lost, and ECMP announces from one node only; every failover figure extip publishes was measured with a DaemonSet. In claims mode preflight refuses fewer than two controllers unless extip_allow_no_failover is true.',
    example: 'Deployment',
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_replicas',
    section: 'controller',
    default: 1,
    rule: integer(1, 1000),
    summary: 'Controller replicas when extip_ctrl_app_kind is Deployment.',
    description: 'Ignored for a DaemonSet. Each replica runs on a labelled node of its own (required anti-affinity): preflight refuses more replicas than labelled nodes, and in claims mode fewer than two unless extip_allow_no_failover is true.',
    example: 2,
    since: 'kargo',
  },
  {
    name: 'extip_allow_no_failover',
    section: 'controller',
    default: false,
    rule: bool,
    summary: 'Accept claims mode with fewer than two controllers (no node to fail over to).',
    description:
      'Claims mode moves a lost node\'s addresses to another node\'s controller. With one controller (a Deployment of one replica, or a DaemonSet over one labelled node) there is none: a lost node\'s addresses stay down until it, or Kubernetes\' rescheduling of its pod, brings them back. Preflight refuses that unless this is true.',
    example: true,
    since: '0.3.0',
  },
  {
    name: 'extip_ctrl_label',
    section: 'controller',
    default: 'externalipcontroller',
    rule: labelValue,
    summary: 'Value of the app label on the controller pods.',
    description: 'Pods carry app=<extip_ctrl_label>, as with the original role, plus the recommended app.kubernetes.io labels.',
    example: 'externalipcontroller',
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_image_pull_policy',
    section: 'controller',
    default: 'IfNotPresent',
    rule: imagePullPolicy,
    summary: 'imagePullPolicy of the controller.',
    description: 'Always, IfNotPresent or Never.',
    example: 'IfNotPresent',
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_verbose',
    section: 'controller',
    default: 5,
    rule: integer(0, 10),
    summary: 'Log verbosity of the controller (--v).',
    description: 'glog verbosity, 0 (quiet) to 10.',
    example: 5,
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_hb',
    section: 'controller',
    default: '500ms',
    rule: durationRule,
    summary: 'Heartbeat interval of the claims-mode controller (--hb).',
    description: 'How often each claim controller renews its IpNode. Must be shorter than extip_sched_monitor, which should allow at least three heartbeats. Not used with extip_distribution all.',
    example: '500ms',
    since: 'kargo',
  },
  {
    name: 'extip_ctrl_resync',
    section: 'controller',
    default: '20s',
    rule: durationRule,
    summary: 'Full resync interval of the controller (--resync).',
    description: 'The controller re-reads all Services and re-applies addresses this often, besides reacting to changes.',
    example: '20s',
    since: '0.1.0',
  },
  {
    name: 'extip_ctrl_hostname',
    section: 'controller',
    default: '{{ ansible_hostname }}',
    rule: text,
    summary: 'Deprecated: each controller now uses its own node name.',
    description:
      'The original role passed this one hostname (the first master\'s) to every controller pod. extip sets --hostname from each pod\'s spec.nodeName (downward API) instead; the variable is still accepted so old group_vars keep working, and is not used.',
    example: '{{ ansible_hostname }}',
    since: 'kargo',
    deprecated: 'ignored since 0.1.0: --hostname comes from each pod\'s node name',
  },
  {
    name: 'extip_ctrl_privileged',
    section: 'controller',
    default: false,
    rule: bool,
    summary: 'Run the controller privileged instead of with NET_ADMIN only.',
    description: 'The controller needs hostNetwork and the NET_ADMIN capability (and NET_RAW in claims mode, for ARP probes and announcements); set this only where a policy requires a privileged container.',
    example: false,
    since: '0.1.0',
  },
  {
    name: 'extip_health_port',
    section: 'controller',
    default: 10295,
    rule: integer(1, 65535),
    summary: 'Port of the agent\'s /healthz, /readyz and /metrics (ipmanager --health-port).',
    description: 'The controller serves it on the node\'s 127.0.0.1 (it shares the node\'s network), the scheduler on its pod\'s address; the kubelet probes /healthz (liveness) and /readyz (ready once the Services are listed, not while the API server is away). Choose a port nothing else on the nodes listens on, nor the port after it: a new controller workload (another extip_namespace, extip_ctrl_app or kind) serves on the port after the old one\'s while both run, so that the addresses pass between them without a gap, and keeps it (the ledger records it).',
    example: 10295,
    since: '0.2.0',
  },
  // --- scheduler -----------------------------------------------------------
  {
    name: 'extip_sched_app',
    section: 'scheduler',
    default: 'claimscheduler',
    rule: objectName,
    summary: 'Name of the scheduler Deployment (claims mode).',
    description: 'Also names its ServiceAccount, ClusterRole and leader-election Lease.',
    example: 'claimscheduler',
    since: 'kargo',
  },
  {
    name: 'extip_sched_label',
    section: 'scheduler',
    default: 'claimscheduler',
    rule: labelValue,
    summary: 'Value of the app label on the scheduler pods.',
    description: 'Pods carry app=<extip_sched_label>.',
    example: 'claimscheduler',
    since: 'kargo',
  },
  {
    name: 'extip_sched_image_pull_policy',
    section: 'scheduler',
    default: 'IfNotPresent',
    rule: imagePullPolicy,
    summary: 'imagePullPolicy of the scheduler.',
    description: 'Always, IfNotPresent or Never.',
    example: 'IfNotPresent',
    since: 'kargo',
  },
  {
    name: 'extip_sched_replicas',
    section: 'scheduler',
    default: 2,
    rule: integer(1, 100),
    summary: 'Scheduler replicas (one leads, the others stand by).',
    description: 'More than one needs extip_sched_leader_elect.',
    example: 2,
    since: 'kargo',
  },
  {
    name: 'extip_sched_verbose',
    section: 'scheduler',
    default: 5,
    rule: integer(0, 10),
    summary: 'Log verbosity of the scheduler (--v).',
    description: 'glog verbosity, 0 (quiet) to 10.',
    example: 5,
    since: 'kargo',
  },
  {
    name: 'extip_sched_leader_elect',
    section: 'scheduler',
    default: 'true',
    rule: bool,
    summary: 'Run the scheduler with leader election (--leader-elect).',
    description: 'The original role used the string "true"; booleans and yes/no are accepted too.',
    example: true,
    since: 'kargo',
  },
  {
    name: 'extip_sched_lease_duration',
    section: 'scheduler',
    default: '3s',
    rule: durationRule,
    summary: 'Leader election lease of the scheduler (--leader-elect-lease-duration).',
    description: 'A standby takes over when the leader has not renewed its Lease for this long, so a lost node that ran the leader hands its addresses over after about this plus extip_sched_monitor less the heartbeats already missed. The renew deadline and retry period are two thirds and two fifteenths of it, the proportions of Kubernetes\' 15s/10s/2s; a leader that cannot renew for the deadline stops deciding and stands again as a candidate. Kubernetes\' components use 15s, which would make that case take some 17 seconds.',
    example: '3s',
    since: '0.2.0',
  },
  {
    name: 'extip_sched_monitor',
    section: 'scheduler',
    default: '1500ms',
    rule: durationRule,
    summary: 'Heartbeat timeout of claims mode (--monitor of scheduler and controller).',
    description: 'The scheduler moves the claims of a node whose heartbeat it has not seen for this long to a live node. A controller whose heartbeats fail takes its addresses down earlier, at this less min(extip_ctrl_hb, a quarter of this), so that two nodes never hold one address. With the defaults (500ms, 1500ms) a node that is lost hands its addresses over in 1.1 to 1.8 seconds, and one heartbeat that fails or is late does not move anything; an API server that does not answer a heartbeat for 1.1 seconds makes a node withdraw until it answers. The original role had 2s.',
    example: '2s',
    since: 'kargo',
  },
  // --- addresses -------------------------------------------------------------
  {
    name: 'extip_external_cidrs',
    section: 'addresses',
    default: [],
    rule: cidrList,
    summary: 'Where Service external IPs may come from (IPv4 and IPv6 CIDRs).',
    description:
      'With the ranges of extip_ip_pools (claims mode; a pool\'s CIDR outside its ranges grants nothing), the only addresses the agent brings up (ipmanager --allowed-cidrs): any other address a Service names gets an ExternalIPRefused Event on the Service and stays down. Whatever the ranges, the agent never brings up an unspecified, loopback, link-local, multicast, broadcast or reserved address, a node\'s address, one inside extip_service_cidr or extip_pod_cidr, or the API server\'s. The ranges are also what Calico advertises in bgpconfiguration mode. Empty: any address a Service names is taken (the upstream behaviour; anyone who may create a Service can then take any address, CVE-2020-8554), and install, status and doctor warn.',
    example: ['192.0.2.0/24', '2001:db8:10::/64'],
    since: '0.2.0',
  },
  {
    name: 'extip_namespaces',
    section: 'addresses',
    default: [],
    rule: nameList,
    summary: 'Only Services of these namespaces get their external IPs (ipmanager --allowed-namespaces).',
    description: 'Empty: Services of any namespace. Services of other namespaces get an ExternalIPRefused Event. To give a team its own range, use an IpClaimPool with namespaces.',
    example: ['ingress', 'team-a'],
    since: '0.2.0',
  },
  // --- pools ---------------------------------------------------------------
  {
    name: 'extip_ip_pools',
    section: 'pools',
    default: [],
    rule: pools,
    summary: 'IpClaimPools for automatic allocation (claims mode).',
    description:
      'Each item: name (object name), cidr (network with its prefix), optional ranges, a list of [first, last] addresses inside the cidr, and optional namespaces, the only namespaces whose Services get its addresses. Services annotated external-ip: auto, and LoadBalancer Services of extip_lb_class or of no class, get an address from a pool.',
    example: [{name: 'pool-a', cidr: '192.0.2.0/24', ranges: [['192.0.2.10', '192.0.2.50']], namespaces: ['team-a']}],
    since: '0.1.0',
  },
  {
    name: 'extip_allow_renumber',
    section: 'pools',
    default: false,
    rule: bool,
    summary: 'Go ahead with an install that moves Services\' allocated addresses out of the pools.',
    description:
      'A re-install whose extip_ip_pools no longer hold an address a pool gave (a range cut, a pool removed) would give those Services new addresses. Preflight lists them and stops unless this is true; set it for that one run (extip install --set extip_allow_renumber=true).',
    example: true,
    since: '0.3.0',
  },
  {
    name: 'extip_lb_class',
    section: 'pools',
    default: 'extip.io/ipmanager',
    rule: labelKey,
    summary: 'The loadBalancerClass extip serves (claims mode).',
    description:
      'Services of type LoadBalancer with this spec.loadBalancerClass, or with none, get an address from the pools in status.loadBalancer.ingress: the one they ask for (spec.loadBalancerIP or the annotation extip.io/load-balancer-ip) when a pool holds it and it is free, else the first free one. Give LoadBalancers of another implementation (MetalLB, say) its own class.',
    example: 'extip.io/ipmanager',
    since: '0.2.0',
  },
  // --- cluster access --------------------------------------------------------
  {
    name: 'extip_kubectl',
    section: 'cluster',
    default: "{{ bin_dir | default('/usr/local/bin') }}/kubectl",
    rule: absPath,
    summary: 'kubectl on the first control-plane host.',
    description: 'kubespray installs it in bin_dir (/usr/local/bin).',
    example: '/usr/local/bin/kubectl',
    since: '0.1.0',
  },
  {
    name: 'extip_kubeconfig',
    section: 'cluster',
    default: "{{ kube_config_dir | default('/etc/kubernetes') }}/admin.conf",
    rule: absPath,
    summary: 'Kubeconfig on the first control-plane host.',
    description: 'Needs rights to label nodes and create RBAC, CRDs and workloads: the admin kubeconfig kubespray writes in kube_config_dir.',
    example: '/etc/kubernetes/admin.conf',
    since: '0.1.0',
  },
  {
    name: 'extip_state_dir',
    section: 'cluster',
    default: '/run/extip',
    rule: absPath,
    summary: 'Where the controller records, on each node, the addresses it brought up (a hostPath).',
    description: 'Uninstall reads these records (and the IPv4 label <iface>:extip) to remove exactly the addresses the controller added.',
    example: '/run/extip',
    since: '0.2.0',
  },
  {
    name: 'extip_manifest_dir',
    section: 'cluster',
    default: "{{ kube_config_dir | default('/etc/kubernetes') }}",
    rule: absPath,
    summary: 'Where the rendered manifests are written on the control-plane host.',
    description: 'extip writes extip_*.yml files here, applies them, and removes them on uninstall; kubespray\'s kube_config_dir.',
    example: '/etc/kubernetes',
    since: '0.1.0',
  },
  {
    name: 'extip_rollout_timeout',
    section: 'cluster',
    default: '5m',
    rule: durationRule,
    summary: 'How long to wait for CRDs and workload rollouts.',
    description: 'On timeout the install fails and shows the state of the pods.',
    example: '5m',
    since: '0.1.0',
  },
  {
    name: 'extip_break_lock',
    section: 'cluster',
    default: false,
    rule: bool,
    summary: 'Take the run lock even when another run holds it (extip --break-lock).',
    description:
      'Every run holds a lock (Lease kube-system/extip-lock) from preflight to its end, so that two runs never change the cluster at once. A lock whose run is gone goes stale and is taken over by itself; set this for one run only, when a run on another machine was killed and you cannot wait for its lock to expire.',
    example: true,
    since: '0.2.0',
  },
  {
    name: 'extip_service_cidr',
    section: 'cluster',
    default: "{{ kube_service_addresses | default('10.233.0.0/18') }}",
    rule: cidr,
    summary: 'The cluster\'s Service CIDR, for address-conflict checks.',
    description: 'kubespray calls it kube_service_addresses. External IPs and pools must not overlap it.',
    example: '10.233.0.0/18',
    since: '0.1.0',
  },
  {
    name: 'extip_pod_cidr',
    section: 'cluster',
    default: "{{ kube_pods_subnet | default('10.233.64.0/18') }}",
    rule: cidr,
    summary: 'The cluster\'s pod CIDR, for address-conflict checks.',
    description: 'kubespray calls it kube_pods_subnet. External IPs and pools must not overlap it.',
    example: '10.233.64.0/18',
    since: '0.1.0',
  },
  // --- calico --------------------------------------------------------------
  {
    name: 'extip_calico_export',
    section: 'calico',
    default: 'auto',
    rule: choice(['auto', 'etcd-v2-filter', 'bgpconfiguration', 'none']),
    summary: 'How Calico is told to export the external IPs over BGP.',
    description:
      'etcd-v2-filter: Calico v2 custom BIRD export filter in etcd (what the original install guide did by hand with etcdctl). bgpconfiguration: Calico v3, add the CIDRs to the default BGPConfiguration\'s serviceExternalIPs. auto: when extip_iface is lo, detect which Calico runs and do the matching thing; otherwise nothing. none: leave Calico alone.',
    example: 'etcd-v2-filter',
    since: '0.1.0',
  },
  {
    name: 'extip_calico_filter_name',
    section: 'calico',
    default: 'lo_iface',
    rule: pattern('keySegment', 'one etcd key segment: 1 to 128 characters of [A-Za-z0-9_.-]', 128),
    summary: 'Key name of the filter under /calico/bgp/v1/global/custom_filters/v4 (and v6).',
    description: 'The original install guide named it lo_iface.',
    example: 'lo_iface',
    since: '0.1.0',
  },
  {
    name: 'extip_calico_filter_v4',
    section: 'calico',
    default: SEED_FILTER_V4,
    rule: birdBody,
    summary: 'BIRD filter text pasted into Calico\'s custom_filters() for IPv4.',
    description: 'The default exports every route of lo except 127.0.0.0/8; once extip_external_cidrs (or, in claims mode, pools) are declared, extip writes it limited to them (if net ~ [ CIDR+, ... ] then accept), so that no other address on lo reaches the routers. A filter you set is written as it is. Checked with BIRD before anything is written when a bird binary is available.',
    example: SEED_FILTER_V4,
    since: '0.1.0',
  },
  {
    name: 'extip_calico_filter_v6_enabled',
    section: 'calico',
    default: false,
    rule: bool,
    summary: 'Also write the IPv6 filter (custom_filters/v6, for bird6).',
    description: 'Set it when the external IPs include IPv6 addresses.',
    example: true,
    since: '0.1.0',
  },
  {
    name: 'extip_calico_filter_v6',
    section: 'calico',
    default: SEED_FILTER_V6,
    rule: birdBody,
    summary: 'BIRD filter text for IPv6 (bird6).',
    description: 'Used when extip_calico_filter_v6_enabled is true. The default exports every route of lo except ::1/128, or, once IPv6 ranges are declared in extip_external_cidrs, only routes inside them.',
    example: SEED_FILTER_V6,
    since: '0.1.0',
  },
  {
    name: 'extip_calico_service_cidrs',
    section: 'calico',
    default: [],
    rule: cidrList,
    summary: 'CIDRs to add to serviceExternalIPs (bgpconfiguration mode).',
    description: 'Added to the pools\' CIDRs. Only entries that are missing are added, and uninstall removes only what extip added.',
    example: ['10.0.0.0/24'],
    since: '0.1.0',
  },
  {
    name: 'extip_etcd_host',
    section: 'calico',
    default: "{{ extip__control_plane_host if (etcd_deployment_type | default('host')) == 'kubeadm' else (groups['etcd'] | default([]) | first | default('')) }}",
    rule: text,
    summary: 'Inventory host that runs etcdctl for the Calico filter.',
    description: 'The first host of the etcd group, where Kargo and kubespray put the admin client certificates; with kubespray\'s etcd_deployment_type kubeadm, the first control-plane host.',
    example: 'node1',
    since: '0.1.0',
  },
  {
    name: 'extip_etcd_endpoints',
    section: 'calico',
    default: "{{ etcd_access_addresses | default('https://127.0.0.1:2379') }}",
    rule: pattern('endpoints', 'comma-separated etcd client URLs such as https://10.0.0.1:2379,https://10.0.0.2:2379'),
    summary: 'etcd client URLs (kubespray: etcd_access_addresses).',
    description: 'Calico v2 keeps its configuration in this etcd; the v2 API must be enabled.',
    example: 'https://10.210.1.11:2379',
    since: '0.1.0',
  },
  {
    name: 'extip_etcdctl',
    section: 'calico',
    default: "{{ bin_dir | default('/usr/local/bin') }}/etcdctl",
    rule: absPath,
    summary: 'etcdctl on extip_etcd_host.',
    description: 'Run with ETCDCTL_API=2.',
    example: '/usr/local/bin/etcdctl',
    since: '0.1.0',
  },
  {
    name: 'extip_etcd_ca_file',
    section: 'calico',
    default: "{{ (kube_cert_dir | default('/etc/kubernetes/ssl')) ~ '/etcd/ca.crt' if (etcd_deployment_type | default('host')) == 'kubeadm' else (etcd_cert_dir | default('/etc/ssl/etcd/ssl')) ~ '/ca.pem' }}",
    rule: absPath,
    summary: 'CA certificate of etcd.',
    description: 'Where Kargo and kubespray put it: etcd_cert_dir, or kube_cert_dir/etcd when kubespray\'s etcd_deployment_type is kubeadm.',
    example: '/etc/ssl/etcd/ssl/ca.pem',
    since: '0.1.0',
  },
  {
    name: 'extip_etcd_cert_file',
    section: 'calico',
    default: "{{ (kube_cert_dir | default('/etc/kubernetes/ssl')) ~ '/etcd/server.crt' if (etcd_deployment_type | default('host')) == 'kubeadm' else (etcd_cert_dir | default('/etc/ssl/etcd/ssl')) ~ '/admin-' ~ extip_etcd_host ~ '.pem' }}",
    rule: absPath,
    summary: 'etcd client certificate.',
    description: 'Kargo and kubespray issue admin-<host>.pem for every etcd host in etcd_cert_dir; with etcd_deployment_type kubeadm, kubespray\'s own etcdctl uses kube_cert_dir/etcd/server.crt.',
    example: '/etc/ssl/etcd/ssl/admin-node1.pem',
    since: '0.1.0',
  },
  {
    name: 'extip_etcd_key_file',
    section: 'calico',
    default: "{{ (kube_cert_dir | default('/etc/kubernetes/ssl')) ~ '/etcd/server.key' if (etcd_deployment_type | default('host')) == 'kubeadm' else (etcd_cert_dir | default('/etc/ssl/etcd/ssl')) ~ '/admin-' ~ extip_etcd_host ~ '-key.pem' }}",
    rule: absPath,
    summary: 'etcd client key.',
    description: 'A path on the etcd host: etcdctl reads the key there, so its material never enters Ansible\'s variables or output.',
    example: '/etc/ssl/etcd/ssl/admin-node1-key.pem',
    since: '0.1.0',
  },
];

/** The titles of the catalogue's sections, in the order the generated files list them. */
export const sectionTitles: Record<Section, string> = {
  general: 'General',
  addresses: 'Address policy (where external IPs may come from)',
  controller: 'Controller (ipmanager naivecontroller / claimcontroller)',
  scheduler: 'Scheduler (claims mode: balance and single)',
  pools: 'IP pools (claims mode)',
  cluster: 'Cluster access',
  calico: 'Calico BGP export',
};
