import { describe } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { sqliteStoreFor } from '../../testing/sqlite-store.js';
import { describeAlertRepository } from '../contract/alert-repository.contract.js';

describe('SQLite store: alerts (real file)', () => {
  describeAlertRepository((t) => sqliteStoreFor(t, new ManualClock()));
});
