-- GridFlock presets: a tenant's named plate-set choices (printer, magnets with their hole,
-- connector, bed margin, brim, filament), picked by the shop SKU GRID-CUSTOM-<name> or a
-- line-item property. Tenant configuration like the integrations: written by the API directly.

CREATE TABLE gridflock_presets (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,40}$'),
    printer_profile     text NOT NULL,
    magnets             boolean NOT NULL,
    magnet_diameter_mm  numeric(5, 2) NOT NULL CHECK (magnet_diameter_mm BETWEEN 3 AND 12),
    magnet_depth_mm     numeric(5, 2) NOT NULL CHECK (magnet_depth_mm BETWEEN 1 AND 5),
    connector           text NOT NULL,
    margin_mm           numeric(5, 2) NOT NULL CHECK (margin_mm BETWEEN 2 AND 20),
    brim_mm             numeric(5, 2) NOT NULL CHECK (brim_mm BETWEEN 0 AND 10),
    filament            text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
