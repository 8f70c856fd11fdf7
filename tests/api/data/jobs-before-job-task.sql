-- A job store written by forkpoint 6b984c2 (api/store.py before JobTask), dumped with sqlite3
-- iterdump: a built-in job running with one result, two inline-schema jobs (with and without
-- instructions, one with labels), a task definition, a finished job; owner, idempotency, corpus.
BEGIN TRANSACTION;
CREATE TABLE corpora (
    job_id TEXT PRIMARY KEY, stats TEXT NOT NULL
);
INSERT INTO "corpora" VALUES('678da6dd3d3e4fe5be67380978af85ef','{"tokens_loaded": 12}');
CREATE TABLE documents (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL, sha256 TEXT,
    PRIMARY KEY (job_id, idx)
);
INSERT INTO "documents" VALUES('678da6dd3d3e4fe5be67380978af85ef',0,'ann.txt','Ann Lee, ann@example.com','sha-ann');
INSERT INTO "documents" VALUES('678da6dd3d3e4fe5be67380978af85ef',1,'bob.txt','Bob Stone, +44 20 7946 0018','sha-bob');
INSERT INTO "documents" VALUES('e65d2080b3124ecdb624baf7a0db786f',0,'n1.txt','please hurry',NULL);
INSERT INTO "documents" VALUES('94717cd77b154a77956cf9f9846dd864',0,'n2.txt','no rush',NULL);
INSERT INTO "documents" VALUES('84aa5e6cd829465d9f8bfaeaa6c146a6',0,'inv.txt','Invoice 7 from Alder Ltd, total 12.50 EUR',NULL);
INSERT INTO "documents" VALUES('ebde7f9900334cb8929c89f06d177760',0,'x.txt','X',NULL);
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY, job_id TEXT NOT NULL, fingerprint TEXT NOT NULL
, created REAL);
INSERT INTO "idempotency" VALUES('0a1b2c3d:key-1','678da6dd3d3e4fe5be67380978af85ef','fp-1',1.79623412109500932686e+09);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, schema_json TEXT, instructions TEXT,
    state TEXT NOT NULL, total INTEGER NOT NULL, created REAL NOT NULL, finished REAL
, owner TEXT, task_spec TEXT);
INSERT INTO "jobs" VALUES('678da6dd3d3e4fe5be67380978af85ef','contacts',NULL,NULL,'running',2,1.79623412109500932686e+09,NULL,'0a1b2c3d',NULL);
INSERT INTO "jobs" VALUES('e65d2080b3124ecdb624baf7a0db786f','inline-schema','{"type": "object", "properties": {"urgent": {"type": "boolean"}}, "required": ["urgent"]}','Classify the note.','queued',1,1.79623412109849691395e+09,NULL,NULL,NULL);
INSERT INTO "jobs" VALUES('94717cd77b154a77956cf9f9846dd864','inline-schema','{"type": "object", "properties": {"urgent": {"type": "boolean"}}, "required": ["urgent"]}',NULL,'queued',1,1.79623412110075831409e+09,NULL,NULL,NULL);
INSERT INTO "jobs" VALUES('84aa5e6cd829465d9f8bfaeaa6c146a6','my-invoices',NULL,NULL,'queued',1,1.79623412115945982935e+09,NULL,NULL,'{"name":"my-invoices","instructions":"You read invoices and extract their header and billed lines. The vendor is the company that sends the invoice, not the customer being billed. Amounts are plain numbers without thousands separators or currency symbols. Dates are written YYYY-MM-DD. Tax lines are not line items.","schema":{"$defs":{"LineItem":{"description":"One billed line.","properties":{"description":{"description":"What was billed, as written.","maxLength":60,"title":"Description","type":"string"},"amount":{"description":"The line''s total amount, a plain number.","title":"Amount","type":"number"}},"required":["description","amount"],"title":"LineItem","type":"object"}},"description":"The header and lines of one invoice.","properties":{"vendor":{"description":"The company that issued the invoice.","maxLength":80,"title":"Vendor","type":"string"},"invoice_number":{"description":"The invoice number as printed.","maxLength":40,"title":"Invoice Number","type":"string"},"issue_date":{"anyOf":[{"format":"date","type":"string"},{"type":"null"}],"default":null,"description":"The date the invoice was issued.","title":"Issue Date"},"due_date":{"anyOf":[{"format":"date","type":"string"},{"type":"null"}],"default":null,"description":"The payment due date, if stated.","title":"Due Date"},"currency":{"description":"ISO 4217 code of the amounts, e.g. EUR, USD, GBP.","pattern":"^[A-Z]{3}$","title":"Currency","type":"string"},"total":{"description":"The total amount due including tax, a plain number.","title":"Total","type":"number"},"line_items":{"description":"The billed lines, in document order (at most 6).","items":{"$ref":"#/$defs/LineItem"},"maxItems":6,"title":"Line Items","type":"array"}},"required":["vendor","invoice_number","currency","total","line_items"],"title":"Invoice","type":"object"},"examples":[{"document":"From: billing@northwind-print.co.uk\nSubject: Invoice NW-20931\n\nHello,\n\nplease find our invoice NW-20931 dated 2026-03-02 for the brochure job.\n\n  500x A5 brochures, 4 colour ...... 340.00\n  Design revisions (2 h) ........... 120.00\n  VAT 20% ........................... 92.00\n\nTotal due: GBP 552.00 by 2026-04-01.\n\nNorthwind Print Ltd, 14 Mill Lane, Leeds","output":{"vendor":"Northwind Print Ltd","invoice_number":"NW-20931","issue_date":"2026-03-02","due_date":"2026-04-01","currency":"GBP","total":552.0,"line_items":[{"description":"500x A5 brochures, 4 colour","amount":340.0},{"description":"Design revisions (2 h)","amount":120.0}]}},{"document":"KESTREL SOFTWARE GMBH | Rechnung / Invoice\nInvoice no.: KS-2026-0117        Date: 2026-01-15\nBill to: Larsen Logistics A/S, Aarhus\n\nItem                               Amount (EUR)\nAnnual licence, 25 seats           4,750.00\nOnboarding workshop                  900.00\n-----------------------------------------------\nTotal                              5,650.00 EUR","output":{"vendor":"KESTREL SOFTWARE GMBH","invoice_number":"KS-2026-0117","issue_date":"2026-01-15","due_date":null,"currency":"EUR","total":5650.0,"line_items":[{"description":"Annual licence, 25 seats","amount":4750.0},{"description":"Onboarding workshop","amount":900.0}]}}],"description":"Seller, number, dates, currency, total and line items of an invoice.","grounded_fields":["vendor","invoice_number"],"copy_fields":["vendor","invoice_number","line_items[].description"],"max_output_tokens":400,"max_reasks":1,"long_documents":"error","chunk_overlap_tokens":100,"max_chunk_tokens":null}');
INSERT INTO "jobs" VALUES('ebde7f9900334cb8929c89f06d177760','contacts',NULL,NULL,'done',1,1.79623412116021943093e+09,1.79623412116057896612e+09,NULL,NULL);
CREATE TABLE labels (
    job_id TEXT NOT NULL, name TEXT NOT NULL, expected TEXT NOT NULL, PRIMARY KEY (job_id, name)
);
INSERT INTO "labels" VALUES('94717cd77b154a77956cf9f9846dd864','n2.txt','{"urgent": false}');
CREATE TABLE results (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, ok INTEGER NOT NULL, record TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, recorded REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
);
INSERT INTO "results" VALUES('678da6dd3d3e4fe5be67380978af85ef',0,1,'{"file": "ann.txt", "ok": true, "status": "ok", "data": {"name": "Ann Lee"}, "usage": {"prompt_tokens": 10, "cached_tokens": 5, "completion_tokens": 3}}',10,5,3,1.79623412109835720062e+09);
INSERT INTO "results" VALUES('ebde7f9900334cb8929c89f06d177760',0,0,'{"file": "x.txt", "ok": false, "status": "error", "error": "boom", "usage": {"prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0}}',0,0,0,1.79623412116055917739e+09);
COMMIT;
