
8c1d/sluice/http1.0"io.sluice.publish*application/json2https://x.example/s.json:order-17B2026-11-25T09:43:44.123ZJ
partitionkey
customer-9JF
traceparent700-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01R{"order":17}¢localªorders°¸Ò	Â
customer-9Ê
x-traceabcÊ
sluice-dlq-functionshoutÐ€Ð™ì®3ðøûÐ™ì®3