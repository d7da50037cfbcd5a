'use strict';
// The echo function: data uppercased; "poison" is rejected; "fanout" also emits one event.
const sluice = require('sluice-sdk'); // in this folder: the package itself (package.json "exports")

sluice.run(async (event, ctx) => {
  const data = event.data.toString('utf8');
  if (data === 'poison') throw new sluice.Reject('poison');
  ctx.info(`echo ${event.id}`);
  if (data === 'fanout') {
    ctx.emit(Buffer.from('FANOUT'), { type: 'sluice.echo.fanout', id: `${event.id}-fanout`,
                                      source: '/sluice/echo', contentType: 'text/plain' });
  }
  return new sluice.Response(Buffer.from(data.toUpperCase()), { contentType: event.dataContentType });
});
