/** The agent API's clients live in src/api; these names stay importable from here for the lab. */
export { AgentClient } from '../api/client.js';
export { AgentApiError, AgentUnreachableError } from '../api/errors.js';
