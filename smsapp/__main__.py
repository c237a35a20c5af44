from smsapp.cli import main

raise SystemExit(main())
