/** The built-in resource types the fake serves, and the defaults the real API server fills in. */
import {type Json, type JsonObject, type KubeObject, type ResourceType, isObject} from './types.js';

const rw = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function t(group: string, version: string, plural: string, kind: string, namespaced: boolean, extra: Partial<ResourceType> = {}): ResourceType {
  return {group, version, plural, singular: kind.toLowerCase(), kind, namespaced, subresources: [], verbs: rw, ...extra};
}

export const BUILTIN_TYPES: ResourceType[] = [
  t('', 'v1', 'namespaces', 'Namespace', false, {shortNames: ['ns'], subresources: ['status']}),
  t('', 'v1', 'nodes', 'Node', false, {shortNames: ['no'], subresources: ['status']}),
  t('', 'v1', 'services', 'Service', true, {shortNames: ['svc'], subresources: ['status']}),
  t('', 'v1', 'pods', 'Pod', true, {shortNames: ['po'], subresources: ['status']}),
  t('', 'v1', 'configmaps', 'ConfigMap', true, {shortNames: ['cm']}),
  t('', 'v1', 'secrets', 'Secret', true),
  t('', 'v1', 'serviceaccounts', 'ServiceAccount', true, {shortNames: ['sa']}),
  t('', 'v1', 'events', 'Event', true, {shortNames: ['ev']}),
  t('', 'v1', 'endpoints', 'Endpoints', true, {shortNames: ['ep']}),
  t('apps', 'v1', 'deployments', 'Deployment', true, {shortNames: ['deploy'], subresources: ['status']}),
  t('apps', 'v1', 'daemonsets', 'DaemonSet', true, {shortNames: ['ds'], subresources: ['status']}),
  t('apps', 'v1', 'replicasets', 'ReplicaSet', true, {shortNames: ['rs'], subresources: ['status']}),
  t('apps', 'v1', 'controllerrevisions', 'ControllerRevision', true),
  t('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false),
  t('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false),
  t('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true),
  t('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true),
  t('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', false, {shortNames: ['crd', 'crds'], subresources: ['status']}),
  t('coordination.k8s.io', 'v1', 'leases', 'Lease', true),
];

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

function setDefault(target: JsonObject, key: string, value: Json): void {
  if (target[key] === undefined) target[key] = value;
}

function defaultPodSpec(spec: JsonObject): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'schedulerName', 'default-scheduler');
  setDefault(spec, 'securityContext', {});
  if (spec.serviceAccountName !== undefined) setDefault(spec, 'serviceAccount', spec.serviceAccountName);
  for (const list of ['containers', 'initContainers']) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    for (const c of containers) {
      if (!isObject(c)) continue;
      setDefault(c, 'terminationMessagePath', '/dev/termination-log');
      setDefault(c, 'terminationMessagePolicy', 'File');
      const image = String(c.image ?? '');
      setDefault(c, 'imagePullPolicy', image.endsWith(':latest') || !image.includes(':') ? 'Always' : 'IfNotPresent');
      setDefault(c, 'resources', {});
      if (Array.isArray(c.ports)) for (const p of c.ports) if (isObject(p)) setDefault(p, 'protocol', 'TCP');
      if (Array.isArray(c.env)) {
        for (const e of c.env) {
          const ref = isObject(e) && isObject(e.valueFrom) ? e.valueFrom.fieldRef : undefined;
          if (isObject(ref)) setDefault(ref, 'apiVersion', 'v1');
        }
      }
    }
  }
}

/** Fills in what the real API server defaults, as far as kubectl and extip look. */
export function applyDefaults(o: KubeObject, ctx: {allocateClusterIP: () => string}): void {
  const spec = obj(o.spec);
  switch (o.kind) {
    case 'Namespace':
      o.spec = {finalizers: ['kubernetes'], ...spec};
      o.metadata.labels = {...(o.metadata.labels ?? {}), 'kubernetes.io/metadata.name': String(o.metadata.name)};
      o.status = {phase: 'Active', ...obj(o.status)};
      break;
    case 'Service': {
      setDefault(spec, 'type', 'ClusterIP');
      setDefault(spec, 'sessionAffinity', 'None');
      if (spec.clusterIP === undefined) spec.clusterIP = ctx.allocateClusterIP();
      if (spec.clusterIP !== 'None') setDefault(spec, 'clusterIPs', [spec.clusterIP as string]);
      setDefault(spec, 'ipFamilies', ['IPv4']);
      setDefault(spec, 'ipFamilyPolicy', 'SingleStack');
      setDefault(spec, 'internalTrafficPolicy', 'Cluster');
      if (Array.isArray(spec.ports)) {
        for (const p of spec.ports) {
          if (!isObject(p)) continue;
          setDefault(p, 'protocol', 'TCP');
          setDefault(p, 'targetPort', p.port ?? null);
        }
      }
      o.spec = spec;
      setDefault(o, 'status', {loadBalancer: {}});
      break;
    }
    case 'DaemonSet': {
      setDefault(spec, 'updateStrategy', {type: 'RollingUpdate', rollingUpdate: {maxUnavailable: 1, maxSurge: 0}});
      setDefault(spec, 'revisionHistoryLimit', 10);
      defaultPodSpec(obj(obj(spec.template).spec));
      o.spec = spec;
      break;
    }
    case 'Deployment': {
      setDefault(spec, 'replicas', 1);
      setDefault(spec, 'strategy', {type: 'RollingUpdate', rollingUpdate: {maxUnavailable: '25%', maxSurge: '25%'}});
      setDefault(spec, 'revisionHistoryLimit', 10);
      setDefault(spec, 'progressDeadlineSeconds', 600);
      defaultPodSpec(obj(obj(spec.template).spec));
      o.spec = spec;
      break;
    }
    case 'Pod':
      defaultPodSpec(spec);
      o.spec = spec;
      break;
    default:
      break;
  }
}
