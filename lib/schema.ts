/**
 * A small reader of the JSON Schema subset extip's own schemas use (type,
 * properties, additionalProperties, items, propertyNames, enum, pattern,
 * minimum, maximum, not with a 'description' that words the refusal). The
 * role's extip_ledger plugin has its twin in Python; both run
 * test/fixtures/ledger-cases.json, message for message.
 */

export type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  propertyNames?: Schema;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  not?: Schema;
  description?: string;
};

const WORDS: Record<string, string> = {object: 'an object', array: 'a list', string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false', null: 'null'};

function typeOf(value: unknown): string[] {
  if (value === null) return ['null'];
  if (Array.isArray(value)) return ['array'];
  if (typeof value === 'number') return Number.isInteger(value) ? ['integer', 'number'] : ['number'];
  return [typeof value];
}

/** Every way `value` breaks `schema`, each as "<path> is ..."; empty when it follows it. */
export function schemaProblems(value: unknown, schema: Schema, path = '(the document)'): string[] {
  if (schema.not && schemaProblems(value, schema.not, path).length === 0) {
    return [`${path} is ${schema.not.description ?? 'not allowed'}`];
  }
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!typeOf(value).some((t) => allowed.includes(t))) return [`${path} is not ${allowed.map((t) => WORDS[t] ?? t).join(' or ')}`];
  }
  const problems: string[] = [];
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) problems.push(`${path} is not one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  if (typeof value === 'string' && schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) problems.push(`${path} does not match ${schema.pattern}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${path} is less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${path} is more than ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => problems.push(...schemaProblems(item, schema.items!, `${path}[${i}]`)));
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, item] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const at = path === '(the document)' ? key : `${path}.${key}`;
      if (schema.propertyNames) problems.push(...schemaProblems(key, schema.propertyNames, `the key ${JSON.stringify(key)} of ${path}`));
      const sub = schema.properties?.[key] ?? schema.additionalProperties;
      if (sub === false) problems.push(`${at} is not a field extip writes`);
      else if (sub && sub !== true) problems.push(...schemaProblems(item, sub, at));
    }
  }
  return problems;
}
