-- Sendcloud v3 shipments beside v2 parcels (issue 17), and visible shipping failures (issue 14).
-- Connections saved before the API version existed were made for v2 parcels: keep them on v2.
UPDATE integrations SET config = config || '{"api_version": "v2"}'::jsonb
 WHERE service = 'sendcloud' AND NOT config ? 'api_version';

ALTER TABLE shipments
    ADD COLUMN api_version          text NOT NULL DEFAULT 'v2' CHECK (api_version IN ('v2', 'v3')),
    ADD COLUMN carrier_shipment_id  text,      -- v3 shipment id (parcel_id stays the parcel's)
    ADD COLUMN carrier_status_code  text,      -- v3 parcel status code, e.g. READY_TO_SEND
    ADD COLUMN attempts             integer NOT NULL DEFAULT 0,
    ADD COLUMN fulfilment_error     text;      -- why Shopify refused the fulfilment, until retried
