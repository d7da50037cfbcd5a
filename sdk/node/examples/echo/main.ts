// The echo function in TypeScript (same behaviour as main.js): the types come from
// index.d.ts. sdk/package_test.sh checks it with `tsc --noEmit --strict`.
import { Reject, Response, run, type Context, type Event } from 'sluice-sdk';

run(async (event: Event, ctx: Context): Promise<Response> => {
  const data: string = event.data.toString('utf8');
  if (data === 'poison') throw new Reject('poison');
  ctx.info(`echo ${event.id}`);
  if (data === 'fanout') {
    ctx.emit(Buffer.from('FANOUT'), { type: 'sluice.echo.fanout', id: `${event.id}-fanout`,
                                      source: '/sluice/echo', contentType: 'text/plain' });
  }
  return new Response(Buffer.from(data.toUpperCase()), { contentType: event.dataContentType });
});
