// The echo function as an ES module (same behaviour as main.js): `import` from
// 'sluice-sdk' resolves to index.mjs through package.json "exports".
import { Reject, Response, run } from 'sluice-sdk';

run(async (event, ctx) => {
  const data = event.data.toString('utf8');
  if (data === 'poison') throw new Reject('poison');
  ctx.info(`echo ${event.id}`);
  if (data === 'fanout') {
    ctx.emit(Buffer.from('FANOUT'), { type: 'sluice.echo.fanout', id: `${event.id}-fanout`,
                                      source: '/sluice/echo', contentType: 'text/plain' });
  }
  return new Response(Buffer.from(data.toUpperCase()), { contentType: event.dataContentType });
});
