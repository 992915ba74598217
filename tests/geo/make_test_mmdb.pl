#!/usr/bin/perl
# make_test_mmdb.pl OUT.mmdb — writes the small MaxMind-format database the geo tests use
# (Debian's libmaxmind-db-writer-perl). Loopback sources stand for clients around the
# world; 127.0.0.1 itself stays unknown:
#   127.0.0.2/32  FR  EU  AS64500
#   127.0.0.3/32  US  NA  AS64501
#   127.0.0.4/32  DE  EU  (no ASN)
#   127.0.0.5/32  JP  AS  AS64502
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift or die "usage: $0 OUT.mmdb\n";
my %types = (
    country                  => 'map',
    continent                => 'map',
    iso_code                 => 'utf8_string',
    code                     => 'utf8_string',
    autonomous_system_number => 'uint32',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'Strata-Test-Country-ASN',
    languages                => ['en'],
    description              => { en => 'Strata test geo database' },
    map_key_type_callback    => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
);
my @nets = (
    [ '127.0.0.2/32', 'FR', 'EU', 64500 ],
    [ '127.0.0.3/32', 'US', 'NA', 64501 ],
    [ '127.0.0.4/32', 'DE', 'EU', undef ],
    [ '127.0.0.5/32', 'JP', 'AS', 64502 ],
);
for my $n (@nets) {
    my %rec = (country => { iso_code => $n->[1] }, continent => { code => $n->[2] });
    $rec{autonomous_system_number} = $n->[3] if defined $n->[3];
    $tree->insert_network($n->[0], \%rec);
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
