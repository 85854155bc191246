import { Empty } from '../ui';

export function Rollouts() {
  return (
    <section>
      <h2>Rollouts</h2>
      <Empty title="Firmware rollouts are not available yet">
        <p>The platform has no over-the-air update API yet. When it does, this page will show rollouts with their waves, gates and progress, and let operators pause, resume or abort them with a reason.</p>
      </Empty>
    </section>
  );
}
