import type pg from 'pg';

/** The parts of pg's connection a COPY FROM STDIN needs (pg-copy-streams uses the same). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * Runs `COPY … FROM STDIN` with `data` as its whole input, as psql's `\copy` does: the data travels as
 * CopyData messages, never as statement text or a bound parameter, so no statement log shows it.
 */
export function copyIn(client: pg.Client, copy: string, data: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      if (e === undefined) resolve();
      else reject(e);
    };
    const submittable = {
      submit(connection: CopyConnection) {
        connection.query(copy);
      },
      handleCopyInResponse(connection: CopyConnection) {
        connection.sendCopyFromChunk(Buffer.from(data, 'utf8'));
        connection.endCopyFrom();
      },
      handleCommandComplete() {},
      handleReadyForQuery() {
        done();
      },
      // pg forgets the active query on an error: its ReadyForQuery comes to nobody, so this is the end.
      handleError(e: Error) {
        done(e);
      },
      handleRowDescription() {},
      handleDataRow() {},
      handleEmptyQuery() {},
      handlePortalSuspended() {},
      handleCopyData() {},
    };
    client.query(submittable as unknown as pg.Submittable);
  });
}
