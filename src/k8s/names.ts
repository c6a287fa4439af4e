/**
 * Kubernetes name rules as the API server checks them (apimachinery's util/validation), so that
 * manifests and policies are refused here for the same reasons, with the same wording. Each
 * function returns the list of problems ([] = valid).
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** RFC 1123 label: namespaces, container names. */
export function dns1123LabelErrors(name: string): string[] {
  const out: string[] = [];
  if (name.length > 63) out.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(name))
    out.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    );
  return out;
}

/** RFC 1123 subdomain: object names such as a policy's metadata.name. */
export function dns1123SubdomainErrors(name: string): string[] {
  const out: string[] = [];
  if (name.length > 253) out.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(name))
    out.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
  return out;
}

/** IANA_SVC_NAME (RFC 6335): container port names and the named ports of a NetworkPolicy. */
export function portNameErrors(name: string): string[] {
  const out: string[] = [];
  if (name.length > 15) out.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(name))
    out.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(name)) out.push('must contain at least one letter (a-z)');
  if (name.includes('--')) out.push('must not contain consecutive hyphens');
  if (name.startsWith('-') || name.endsWith('-')) out.push('must not begin or end with a hyphen');
  return out;
}

/** A label value: empty, or up to 63 characters of [A-Za-z0-9-_.] starting and ending alphanumeric. */
export function labelValueErrors(value: string): string[] {
  const out: string[] = [];
  if (value.length > 63) out.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(value))
    out.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    );
  return out;
}

/** A label key: `[prefix/]name`, the prefix an RFC 1123 subdomain, the name up to 63 characters. */
export function labelKeyErrors(key: string): string[] {
  const parts = key.split('/');
  if (parts.length > 2 || key === '')
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'",
    ];
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  const out: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') out.push('prefix part must be non-empty');
    else out.push(...dns1123SubdomainErrors(prefix).map((e) => `prefix part ${e}`));
  }
  if (name.length === 0) out.push('name part must be non-empty');
  else {
    if (name.length > 63) out.push('name part must be no more than 63 characters');
    if (!QUALIFIED_NAME_PART.test(name))
      out.push(
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
      );
  }
  return out;
}
