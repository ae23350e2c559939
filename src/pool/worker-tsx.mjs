// Worker entry used when the library runs from its TypeScript sources (tests,
// benchmarks under tsx): registers the TypeScript loader inside the worker,
// which Node 20 does not inherit from the parent's --import.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./worker.ts');
export default worker.default;
