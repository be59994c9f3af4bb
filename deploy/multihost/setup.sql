-- One PostgreSQL database for the pipelines of every host (deploy/MULTIHOST.md, step 2).
--
-- Run once on the database server, as the superuser:
--     sudo -u postgres psql -v ON_ERROR_STOP=1 -f setup.sql
-- then give each login role its password (psql asks for it: it lands in no file and no shell history):
--     sudo -u postgres psql -c '\password hft_host_a'        (and hft_host_b, hft_reader)
-- One host more: CREATE ROLE hft_host_c ..., its ALTER ROLE ... SET role line, a pg_hba.conf line, a config.

-- hft_writer owns the tables. The persistence process of every host creates them on its first start (IF NOT EXISTS,
-- under an advisory lock: two hosts starting at once are fine), replaces the trades view and writes the rows; all of
-- that as hft_writer, so each host may write what another host created.
CREATE ROLE hft_writer NOLOGIN;

-- One login role per host: pg_hba.conf admits each from its own address only, and one host can be shut out alone
-- (ALTER ROLE hft_host_b NOLOGIN) without touching the others.
CREATE ROLE hft_host_a LOGIN IN ROLE hft_writer;
CREATE ROLE hft_host_b LOGIN IN ROLE hft_writer;

-- Reports across hosts (`hft report postgresql://hft_reader@...`), Grafana's PostgreSQL data source, analysts.
CREATE ROLE hft_reader LOGIN;

CREATE DATABASE hft OWNER hft_writer ENCODING 'UTF8' TEMPLATE template0;
-- a host's sessions in this database act as hft_writer: what they create belongs to hft_writer, not to the host
ALTER ROLE hft_host_a IN DATABASE hft SET role = 'hft_writer';
ALTER ROLE hft_host_b IN DATABASE hft SET role = 'hft_writer';
REVOKE ALL ON DATABASE hft FROM PUBLIC;
GRANT CONNECT ON DATABASE hft TO hft_writer, hft_reader;

\connect hft
-- PostgreSQL 15 and later: the public schema belongs to the database's owner (hft_writer) and nobody else may create
-- in it; older versions let PUBLIC create there, which the first line takes back.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO hft_reader;
-- the reader may read every table and view the hosts create, now and later, and write nothing
ALTER DEFAULT PRIVILEGES FOR ROLE hft_writer IN SCHEMA public GRANT SELECT ON TABLES TO hft_reader;
