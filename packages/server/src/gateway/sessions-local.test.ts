import { LocalSessionTable } from './sessions-local.js';
import { describeSessionTable } from './sessions-contract.js';

describeSessionTable('LocalSessionTable', (deps) => new LocalSessionTable(deps));
