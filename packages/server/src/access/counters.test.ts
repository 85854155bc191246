import { describeCounterContract } from './counters-contract.js';
import { MemoryCounterStore } from './counters.js';

describeCounterContract('MemoryCounterStore', async (clock) => ({ counters: new MemoryCounterStore(clock), close: async () => undefined }), { realTime: false });
