export * from './cidr.js';
export * from './k8s.js';
export * from './label.js';
export * from './reserved.js';
