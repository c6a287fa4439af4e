export { cgroup2Mount } from './cgroup.js';
export { LinuxCommandError } from './errors.js';
export { inNetns, type RunOptions, type RunResult, run } from './exec.js';
export * from './ip.js';
export * from './netns.js';
