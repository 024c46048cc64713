INSERT INTO audit.alert_mail (recipients, subject, incidents)
VALUES (%(recipients)s, %(subject)s, %(incidents)s);
