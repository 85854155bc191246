import { silentLogger } from '@bulwark/core';
import { describeBusContract } from './bus-contract.js';
import { MemoryBus } from './memory-bus.js';

describeBusContract('MemoryBus', async () => {
  const bus = new MemoryBus(silentLogger);
  return { a: bus, b: bus, close: () => bus.close() };
});
