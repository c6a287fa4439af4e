import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { labelKeyErrors, portNameErrors } from '../../../src/k8s/names.js';
import { ManifestError, parseManifests, podNamedPorts } from '../../../src/k8s/objects.js';

const pod = (ports: string) => `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - name: server
    ports:
${ports}`;

function rejection(text: string): string {
  try {
    parseManifests(text, 'web.yaml');
  } catch (e) {
    assert.ok(e instanceof ManifestError);
    return e.message;
  }
  assert.fail('manifest accepted');
}

describe('container port names are validated as the API server does', () => {
  it('a lowercase IANA service name is accepted and resolves exactly', () => {
    const m = parseManifests(
      pod('    - {name: http, containerPort: 80}\n    - {name: dns-udp, containerPort: 53, protocol: UDP}'),
    );
    assert.deepEqual(podNamedPorts(m.pods[0]!), {
      http: { port: 80, protocol: 'TCP' },
      'dns-udp': { port: 53, protocol: 'UDP' },
    });
  });

  it('HTTP is refused, naming the field', () => {
    assert.equal(
      rejection(pod('    - {name: HTTP, containerPort: 80}')),
      'web.yaml: document 1 (Pod web): spec.containers[0].ports[0].name: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    );
  });

  it('every IANA_SVC_NAME rule', () => {
    assert.deepEqual(portNameErrors('http-8080'), []);
    assert.deepEqual(portNameErrors('serve-81-tcp'), []);
    assert.deepEqual(portNameErrors('a-very-long-port-name'), ['must be no more than 15 characters']);
    assert.deepEqual(portNameErrors('8080'), ['must contain at least one letter (a-z)']);
    assert.deepEqual(portNameErrors('web--1'), ['must not contain consecutive hyphens']);
    assert.deepEqual(portNameErrors('-web'), ['must not begin or end with a hyphen']);
    assert.deepEqual(portNameErrors('web_1'), [
      'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ]);
  });

  it('a port name is unique within the pod', () => {
    const text = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - name: a
    ports: [{name: http, containerPort: 80}]
  - name: b
    ports: [{name: http, containerPort: 8080}]`;
    assert.equal(
      rejection(text),
      'web.yaml: document 1 (Pod web): spec.containers[1].ports[0].name: duplicate port name "http"',
    );
  });
});

describe('label keys', () => {
  it('qualified names with an optional DNS subdomain prefix', () => {
    assert.deepEqual(labelKeyErrors('app'), []);
    assert.deepEqual(labelKeyErrors('kubernetes.io/hostname'), []);
    assert.deepEqual(labelKeyErrors('Example.com/x'), [
      "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    ]);
    assert.equal(labelKeyErrors('a/b/c').length, 1);
    assert.deepEqual(labelKeyErrors('x/'), ['name part must be non-empty']);
  });
});
