"""What a finished ranking is written as: tables (CSV / Parquet / XLSX / JSON), the terminal, the report (content, figures, HTML / Markdown) and ``build_report``."""
