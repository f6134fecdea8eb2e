/**
 * A UPnP Internet Gateway Device client, as much as extip needs: the
 * gateway found by SSDP (an M-SEARCH for an InternetGatewayDevice, sent
 * from the node's address on its interface), its WANIPConnection (or
 * WANPPPConnection) control URL read from its description, and the SOAP
 * actions AddPortMapping, DeletePortMapping and GetExternalIPAddress.
 *
 * Every request goes from the Service's address (`from`): a gateway in
 * secure mode (miniupnpd's default, and most home routers') maps ports only
 * to the host that asks, and the Service's address is on this node while it
 * holds it. A mapping names that address as its internal client, so it stays
 * right when the address moves to another node; the new holder renews it.
 */
import {createSocket} from 'node:dgram';
import {request} from 'node:http';

const SSDP = {address: '239.255.255.250', port: 1900};
const IGD = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
const CONNECTIONS = ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1', 'urn:schemas-upnp-org:service:WANPPPConnection:1'];

export interface Gateway {
  /** The description's URL (SSDP's LOCATION). */
  location: string;
  controlUrl: string;
  serviceType: string;
}

export interface PortMapping {
  protocol: 'TCP' | 'UDP';
  /** The gateway's port, and the Service's (the same number). */
  port: number;
  /** The Service's address: the internal client. */
  client: string;
  description: string;
  leaseSeconds: number;
}

/** An error the gateway answered with (a SOAP fault's UPnP error code and description), or why there was no answer. */
export class UpnpError extends Error {
  constructor(message: string, readonly code?: number) {
    super(message);
  }
}

/** Searches for a gateway from `from` (the node's address on the interface); the first LOCATION that answers within `waitMs`. */
export function discover(from: string, waitMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket({type: 'udp4', reuseAddr: true});
    let done = false;
    const finish = (location?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(location);
    };
    const timer = setTimeout(() => finish(undefined), waitMs);
    socket.on('error', () => finish(undefined));
    socket.on('message', (msg) => {
      const text = msg.toString('utf8');
      if (!/^HTTP\/1\.[01] 200/i.test(text)) return;
      const location = /^location:\s*(\S+)/im.exec(text)?.[1];
      if (location) finish(location);
    });
    socket.bind(0, from, () => {
      try {
        socket.setMulticastInterface(from);
      } catch {
        // The default route's interface, then.
      }
      const search = ['M-SEARCH * HTTP/1.1', `HOST: ${SSDP.address}:${SSDP.port}`, 'MAN: "ssdp:discover"', 'MX: 1', `ST: ${IGD}`, '', ''].join('\r\n');
      socket.send(search, SSDP.port, SSDP.address);
      // Once more, in case the first datagram was lost.
      setTimeout(() => !done && socket.send(search, SSDP.port, SSDP.address), Math.min(500, waitMs / 2)).unref();
    });
  });
}

/** An HTTP exchange from `from`; the status and body. */
function http(url: string, from: string, options: {method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number} = {}): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const req = request(url, {method: options.method ?? 'GET', headers: options.headers, localAddress: from, timeout: options.timeoutMs ?? 5000}, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8')}));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new UpnpError(`${url}: no answer within ${options.timeoutMs ?? 5000} ms`)));
    req.on('error', (err) => reject(err instanceof UpnpError ? err : new UpnpError(`${url}: ${err.message}`)));
    if (options.body) req.write(options.body);
    req.end();
  });
}

/** The text of an XML element (the first), unescaped. */
function element(xml: string, name: string): string | undefined {
  const m = new RegExp(`<(?:\\w+:)?${name}>([\\s\\S]*?)</(?:\\w+:)?${name}>`).exec(xml);
  return m ? unescape(m[1].trim()) : undefined;
}

function unescape(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Reads the gateway's description: the control URL of its WAN connection service. */
export async function describeGateway(location: string, from: string): Promise<Gateway> {
  const r = await http(location, from);
  if (r.status !== 200) throw new UpnpError(`${location}: HTTP ${r.status}`);
  const services = [...r.body.matchAll(/<service>([\s\S]*?)<\/service>/g)].map((m) => ({type: element(m[1], 'serviceType') ?? '', control: element(m[1], 'controlURL') ?? ''}));
  for (const type of CONNECTIONS) {
    const s = services.find((x) => x.type === type && x.control);
    if (s) return {location, controlUrl: new URL(s.control, element(r.body, 'URLBase') || location).toString(), serviceType: type};
  }
  throw new UpnpError(`${location} describes no WANIPConnection or WANPPPConnection service`);
}

/** One SOAP action; its response's body, or an UpnpError with the gateway's code and description. */
async function soap(gateway: Gateway, from: string, action: string, args: Record<string, string | number>): Promise<string> {
  const inner = Object.entries(args).map(([k, v]) => `<${k}>${escape(String(v))}</${k}>`).join('');
  const body = `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${gateway.serviceType}">${inner}</u:${action}></s:Body></s:Envelope>\r\n`;
  const r = await http(gateway.controlUrl, from, {
    method: 'POST',
    headers: {'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${gateway.serviceType}#${action}"`, 'Content-Length': String(Buffer.byteLength(body))},
    body,
  });
  if (r.status === 200) return r.body;
  const code = Number(element(r.body, 'errorCode'));
  const description = element(r.body, 'errorDescription');
  throw new UpnpError(`${action}: ${Number.isFinite(code) ? `UPnP error ${code}${description ? ` (${description})` : ''}` : `HTTP ${r.status}`}`, Number.isFinite(code) ? code : undefined);
}

/** The gateway's external address. */
export async function externalAddress(gateway: Gateway, from: string): Promise<string> {
  const body = await soap(gateway, from, 'GetExternalIPAddress', {});
  return element(body, 'NewExternalIPAddress') ?? '';
}

/** Maps the gateway's `port` to the Service's address and port, for `leaseSeconds` (again: renews it). */
export async function addMapping(gateway: Gateway, m: PortMapping): Promise<void> {
  await soap(gateway, m.client, 'AddPortMapping', {
    NewRemoteHost: '',
    NewExternalPort: m.port,
    NewProtocol: m.protocol,
    NewInternalPort: m.port,
    NewInternalClient: m.client,
    NewEnabled: 1,
    NewPortMappingDescription: m.description,
    NewLeaseDuration: m.leaseSeconds,
  });
}

/** Removes the mapping of the gateway's `port`; one already gone (UPnP error 714) is no error. */
export async function deleteMapping(gateway: Gateway, from: string, protocol: 'TCP' | 'UDP', port: number): Promise<void> {
  try {
    await soap(gateway, from, 'DeletePortMapping', {NewRemoteHost: '', NewExternalPort: port, NewProtocol: protocol});
  } catch (err) {
    if ((err as UpnpError).code !== 714) throw err;
  }
}
